"""Practitioner search and connection requests (patient → practitioner)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit, limits
from server.conversations.service import open_conversation
from server.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from server.models import (
    PATIENT,
    PRACTITIONER,
    ContactRequest,
    ContactRequestStatus,
    Conversation,
    Practice,
    Role,
    User,
)
from server.notify import queue
from server.services import Services
from server.values import search_key


@dataclass(frozen=True)
class PractitionerView:
    user: User
    practice: Practice | None


# How people name a practitioner before the name ("Dr Martin", "docteur Martin", "Mme Roux"):
# part of what they type, not of the name.
TITLES = frozenset(
    {
        "dr",
        "dr.",
        "docteur",
        "doctoresse",
        "pr",
        "pr.",
        "professeur",
        "m",
        "m.",
        "mr",
        "mme",
        "mlle",
        "monsieur",
        "madame",
        "infirmier",
        "infirmiere",
        "inf",
        "inf.",
    }
)


async def search_practitioners(db: AsyncSession, query: str) -> list[PractitionerView]:
    words = [w for w in search_key(query).replace(",", " ").split() if w not in TITLES]
    if len("".join(words)) < limits.SEARCH_MIN_QUERY_LENGTH:
        raise InvalidInput(
            f"q : tapez au moins {limits.SEARCH_MIN_QUERY_LENGTH} lettres du nom recherché"
        )
    stmt = (
        select(User, Practice)
        .outerjoin(Practice, Practice.id == User.practice_id)
        .where(
            User.role.in_([Role.DOCTOR, Role.NURSE]),
            User.is_active.is_(True),
            User.approved_at.is_not(None),
        )
        .order_by(User.last_name, User.first_name)
        .limit(limits.SEARCH_MAX_RESULTS)
    )
    for word in words:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(User.search_name.like(f"%{escaped}%", escape="\\"))
    return [PractitionerView(u, p) for u, p in (await db.execute(stmt)).all()]


def _require_patient(user: User) -> None:
    if user.role != Role.PATIENT:
        raise Forbidden("Seul un patient peut envoyer une demande de mise en relation.")


def _require_practitioner(user: User) -> None:
    if user.role not in {Role.DOCTOR, Role.NURSE}:
        raise Forbidden(
            "Seul le praticien concerné peut répondre à une demande de mise en relation."
        )


async def create_request(
    db: AsyncSession,
    services: Services,
    patient: User,
    practitioner_id: str,
    message: str | None,
    *,
    ip: str | None,
) -> ContactRequest:
    _require_patient(patient)
    practitioner = await db.get(User, practitioner_id)
    if (
        practitioner is None
        or practitioner.role not in {Role.DOCTOR, Role.NURSE}
        or not practitioner.is_active
        or practitioner.pending_approval
    ):
        raise NotFound("Praticien introuvable.")
    existing_conversation = await db.scalar(
        select(Conversation.id).where(
            Conversation.practitioner_id == practitioner.id, Conversation.patient_id == patient.id
        )
    )
    if existing_conversation is not None:
        raise Conflict(
            "Vous êtes déjà en relation avec ce praticien : écrivez-lui depuis votre conversation.",
            extra={"conversation_id": existing_conversation},
        )
    previous = list(
        await db.scalars(
            select(ContactRequest)
            .where(
                ContactRequest.patient_id == patient.id,
                ContactRequest.practitioner_id == practitioner.id,
            )
            .order_by(ContactRequest.created_at.desc())
        )
    )
    now = services.clock.now()
    for request in previous:
        if request.status == ContactRequestStatus.PENDING:
            raise Conflict("Vous avez déjà une demande en attente auprès de ce praticien.")
        if (
            request.status == ContactRequestStatus.DECLINED
            and request.decided_at is not None
            and now - request.decided_at < limits.CONTACT_REQUEST_COOLDOWN_AFTER_DECLINE
        ):
            until = request.decided_at + limits.CONTACT_REQUEST_COOLDOWN_AFTER_DECLINE
            raise Conflict(
                "Ce praticien a décliné votre demande récemment ; vous pourrez en envoyer une "
                f"nouvelle à partir du {until.strftime('%d/%m/%Y')}."
            )
    sent_today = await db.scalar(
        select(func.count(ContactRequest.id)).where(
            ContactRequest.patient_id == patient.id,
            ContactRequest.created_at > now - timedelta(days=1),
        )
    )
    if (sent_today or 0) >= limits.CONTACT_REQUESTS_PER_PATIENT_PER_DAY:
        raise RateLimited(
            f"Vous avez envoyé {limits.CONTACT_REQUESTS_PER_PATIENT_PER_DAY} demandes "
            "en 24 heures. "
            "Attendez la réponse des praticiens avant d'en envoyer d'autres.",
            retry_after_seconds=3600,
        )
    request = ContactRequest(
        patient_id=patient.id,
        practitioner_id=practitioner.id,
        message=message or None,
        status=ContactRequestStatus.PENDING,
        created_at=now,
    )
    db.add(request)
    await db.flush()
    queue.contact_requested(db, now, request.id, practitioner.id)
    audit.record(
        db,
        services.clock,
        "contact_request.sent",
        actor_id=patient.id,
        ip=ip,
        resource_type="contact_request",
        resource_id=request.id,
    )
    return request


@dataclass(frozen=True)
class ContactRequestView:
    request: ContactRequest
    patient: User
    practitioner: User


async def list_requests(db: AsyncSession, user: User) -> list[ContactRequestView]:
    patient, practitioner = PATIENT, PRACTITIONER
    stmt = (
        select(ContactRequest, patient, practitioner)
        .join(patient, patient.id == ContactRequest.patient_id)
        .join(practitioner, practitioner.id == ContactRequest.practitioner_id)
        .order_by(ContactRequest.created_at.desc())
        .limit(500)
    )
    if user.role == Role.PATIENT:
        stmt = stmt.where(ContactRequest.patient_id == user.id)
    elif user.role in {Role.DOCTOR, Role.NURSE}:
        stmt = stmt.where(ContactRequest.practitioner_id == user.id)
    else:
        raise Forbidden(
            "Les demandes de mise en relation concernent les patients et les praticiens."
        )
    return [ContactRequestView(r, p, pr) for r, p, pr in (await db.execute(stmt)).all()]


async def _access_incoming(db: AsyncSession, practitioner: User, request_id: str) -> ContactRequest:
    request = await db.get(ContactRequest, request_id)
    if request is None:
        raise NotFound("Demande introuvable.")
    if request.practitioner_id != practitioner.id:
        raise NotFound("Demande introuvable.")
    return request


async def accept_request(
    db: AsyncSession, services: Services, practitioner: User, request_id: str, *, ip: str | None
) -> ContactRequest:
    _require_practitioner(practitioner)
    request = await _access_incoming(db, practitioner, request_id)
    if request.status == ContactRequestStatus.ACCEPTED:
        return request  # a second click: same answer, nothing more
    if request.status != ContactRequestStatus.PENDING:
        raise Conflict("Cette demande a déjà été déclinée.")
    conversation = await open_conversation(
        db,
        services,
        practitioner_id=practitioner.id,
        patient_id=request.patient_id,
        origin="contact_request",
        actor_id=practitioner.id,
        ip=ip,
    )
    request.status = ContactRequestStatus.ACCEPTED
    request.decided_at = services.clock.now()
    request.conversation_id = conversation.id
    audit.record(
        db,
        services.clock,
        "contact_request.accepted",
        actor_id=practitioner.id,
        ip=ip,
        resource_type="contact_request",
        resource_id=request.id,
        details={"conversation_id": conversation.id},
    )
    await db.flush()
    return request


async def decline_request(
    db: AsyncSession, services: Services, practitioner: User, request_id: str, *, ip: str | None
) -> ContactRequest:
    _require_practitioner(practitioner)
    request = await _access_incoming(db, practitioner, request_id)
    if request.status == ContactRequestStatus.DECLINED:
        return request
    if request.status != ContactRequestStatus.PENDING:
        raise Conflict("Cette demande a déjà été acceptée.")
    request.status = ContactRequestStatus.DECLINED
    request.decided_at = services.clock.now()
    audit.record(
        db,
        services.clock,
        "contact_request.declined",
        actor_id=practitioner.id,
        ip=ip,
        resource_type="contact_request",
        resource_id=request.id,
    )
    await db.flush()
    return request
