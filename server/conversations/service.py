"""Opening conversations, finding them, and deciding who may see them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from server import audit
from server.errors import NotFound
from server.models import Conversation, Role, SecretaryAssignment, User
from server.services import Services
from server.values import search_key


async def open_conversation(
    db: AsyncSession,
    services: Services,
    *,
    practitioner_id: str,
    patient_id: str,
    origin: str,
    actor_id: str,
    ip: str | None,
) -> Conversation:
    """Return the conversation between these two, creating it if needed.

    Runs inside the caller's transaction; a concurrent creation of the same pair is caught by the
    unique constraint inside a savepoint, and the existing row is returned instead.
    """
    existing = await _find(db, practitioner_id, patient_id)
    if existing is not None:
        return existing
    conversation = Conversation(
        practitioner_id=practitioner_id,
        patient_id=patient_id,
        origin=origin,
        patient_can_write=None,
        created_at=services.clock.now(),
    )
    try:
        async with db.begin_nested():
            db.add(conversation)
    except IntegrityError:
        found = await _find(db, practitioner_id, patient_id)
        assert found is not None
        return found
    audit.record(
        db,
        services.clock,
        "conversation.opened",
        actor_id=actor_id,
        ip=ip,
        resource_type="conversation",
        resource_id=conversation.id,
        details={"origin": origin},
    )
    return conversation


async def _find(db: AsyncSession, practitioner_id: str, patient_id: str) -> Conversation | None:
    return await db.scalar(
        select(Conversation).where(
            Conversation.practitioner_id == practitioner_id,
            Conversation.patient_id == patient_id,
        )
    )


def _visible_to(user: User) -> ColumnElement[bool]:
    """The SQL condition for "this user is a member of the conversation"."""
    if user.role == Role.PATIENT:
        return Conversation.patient_id == user.id
    if user.role == Role.SECRETARY:
        doctors = select(SecretaryAssignment.doctor_id).where(
            SecretaryAssignment.secretary_id == user.id
        )
        return Conversation.practitioner_id.in_(doctors)
    if user.role in {Role.DOCTOR, Role.NURSE}:
        return Conversation.practitioner_id == user.id
    return Conversation.id.is_(None)  # admins see the audit log, not conversations


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    patient: User
    practitioner: User


async def list_conversations(
    db: AsyncSession, user: User, query: str | None = None, limit: int = 200
) -> list[ConversationView]:
    patient = aliased(User)
    practitioner = aliased(User)
    stmt = (
        select(Conversation, patient, practitioner)
        .join(patient, patient.id == Conversation.patient_id)
        .join(practitioner, practitioner.id == Conversation.practitioner_id)
        .where(_visible_to(user))
        .order_by(Conversation.created_at.desc())
        .limit(limit)
    )
    if query:
        words = search_key(query).split()
        for word in words:
            pattern = f"%{_escape_like(word)}%"
            stmt = stmt.where(
                or_(
                    patient.search_name.like(pattern, escape="\\"),
                    practitioner.search_name.like(pattern, escape="\\"),
                )
            )
    rows = (await db.execute(stmt)).all()
    return [ConversationView(c, p, pr) for c, p, pr in rows]


async def access_conversation(
    db: AsyncSession, services: Services, user: User, conversation_id: str, *, ip: str | None
) -> ConversationView:
    """The conversation if the user is a member; NotFound otherwise, whether it exists or not.
    Every successful access is written to the audit log (health data)."""
    patient = aliased(User)
    practitioner = aliased(User)
    row = (
        await db.execute(
            select(Conversation, patient, practitioner)
            .join(patient, patient.id == Conversation.patient_id)
            .join(practitioner, practitioner.id == Conversation.practitioner_id)
            .where(Conversation.id == conversation_id)
            .where(_visible_to(user))
        )
    ).first()
    if row is None:
        raise NotFound("Conversation introuvable.")
    audit.record(
        db,
        services.clock,
        "conversation.read",
        actor_id=user.id,
        ip=ip,
        resource_type="conversation",
        resource_id=conversation_id,
    )
    return ConversationView(*row)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
