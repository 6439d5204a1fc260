"""Invitation domain logic: create, correct, resend, cancel, look up by token, accept.

Delivery is separate (``delivery.py``): these functions queue a delivery in the same transaction
as the change, so an invitation never exists without its message being on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit, limits
from server.accounts.email_verification import ask_verification
from server.accounts.service import NewUser, create_user
from server.conversations.service import open_conversation
from server.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from server.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Invitation,
    InvitationStatus,
    Role,
    User,
)
from server.services import Services
from server.tokens import token_hash


@dataclass(frozen=True)
class Invitee:
    first_name: str
    last_name: str
    email: str | None
    phone: str | None

    def channel(self) -> Channel:
        if not self.email and not self.phone:
            raise InvalidInput(
                "Indiquez l'adresse e-mail ou le numéro de téléphone du patient "
                "(au moins l'un des deux)."
            )
        # domain.md §1: an email, with or without phone, wins; phone alone goes by SMS.
        return Channel.EMAIL if self.email else Channel.SMS


def effective_status(invitation: Invitation, now: datetime) -> InvitationStatus:
    status = InvitationStatus(invitation.status)
    if status == InvitationStatus.PENDING and now >= invitation.expires_at:
        return InvitationStatus.EXPIRED
    return status


def status_changed_at(invitation: Invitation, now: datetime) -> datetime:
    if effective_status(invitation, now) == InvitationStatus.EXPIRED:
        return invitation.expires_at
    return invitation.status_changed_at


def _require_inviter(user: User) -> None:
    if user.role not in {Role.DOCTOR, Role.NURSE}:
        raise Forbidden("Seul un médecin ou un infirmier peut inviter un patient.")


def _queue_delivery(db: AsyncSession, services: Services, invitation: Invitation) -> Delivery:
    recipient = invitation.email if invitation.channel == Channel.EMAIL else invitation.phone
    assert recipient is not None
    now = services.clock.now()
    delivery = Delivery(
        invitation_id=invitation.id,
        channel=invitation.channel,
        recipient=recipient,
        status=DeliveryStatus.QUEUED,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db.add(delivery)
    return delivery


async def _supersede_deliveries(db: AsyncSession, invitation_id: str) -> None:
    """Stop earlier deliveries still waiting to retry: the new one replaces them."""
    await db.execute(
        update(Delivery)
        .where(
            Delivery.invitation_id == invitation_id,
            Delivery.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.RETRYING]),
        )
        .values(status=DeliveryStatus.FAILED, last_error="remplacé par un nouvel envoi")
    )


async def create_invitation(
    db: AsyncSession, services: Services, doctor: User, invitee: Invitee, *, ip: str | None
) -> tuple[Invitation, Delivery]:
    _require_inviter(doctor)
    channel = invitee.channel()
    await services.limiter.take(
        f"invite:{doctor.id}",
        limits.INVITATIONS_PER_DOCTOR_PER_HOUR,
        limits.LOGIN_WINDOW * 4,
        "Trop d'invitations envoyées en une heure. Réessayez plus tard.",
    )
    now = services.clock.now()
    invitation = Invitation(
        doctor_id=doctor.id,
        first_name=invitee.first_name,
        last_name=invitee.last_name,
        email=invitee.email,
        phone=invitee.phone,
        channel=channel,
        status=InvitationStatus.PENDING,
        created_at=now,
        expires_at=now + limits.INVITATION_VALIDITY,
        status_changed_at=now,
    )
    db.add(invitation)
    await db.flush()
    delivery = _queue_delivery(db, services, invitation)
    audit.record(
        db,
        services.clock,
        "invitation.sent",
        actor_id=doctor.id,
        ip=ip,
        resource_type="invitation",
        resource_id=invitation.id,
        details={"channel": channel},
    )
    await db.flush()
    return invitation, delivery


async def access_invitation(db: AsyncSession, doctor: User, invitation_id: str) -> Invitation:
    """The doctor's own invitation; another doctor's id reads as unknown."""
    invitation = await db.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("Invitation introuvable.")
    if invitation.doctor_id != doctor.id:
        raise NotFound("Invitation introuvable.")
    return invitation


def _require_pending(invitation: Invitation, now: datetime, action: str) -> None:
    status = effective_status(invitation, now)
    if status == InvitationStatus.PENDING:
        return
    reasons = {
        InvitationStatus.ACCEPTED: "elle a déjà été acceptée",
        InvitationStatus.CANCELLED: "elle a été annulée",
        InvitationStatus.EXPIRED: "elle a expiré ; envoyez une nouvelle invitation",
    }
    raise Conflict(f"Impossible de {action} cette invitation : {reasons[status]}.")


async def correct_invitation(
    db: AsyncSession,
    services: Services,
    doctor: User,
    invitation_id: str,
    changes: dict[str, str | None],
    *,
    ip: str | None,
) -> tuple[Invitation, Delivery]:
    """Fix a mistaken name or address and send again to the corrected address."""
    _require_inviter(doctor)
    invitation = await access_invitation(db, doctor, invitation_id)
    _require_pending(invitation, services.clock.now(), "corriger")
    for field in ("first_name", "last_name"):
        if field in changes:
            if not changes[field]:
                raise InvalidInput(f"{field} : ne peut pas être vide")
            setattr(invitation, field, changes[field])
    for field in ("email", "phone"):
        if field in changes:
            setattr(invitation, field, changes[field])
    invitation.channel = Invitee(
        invitation.first_name, invitation.last_name, invitation.email, invitation.phone
    ).channel()
    return await _resend(
        db,
        services,
        doctor,
        invitation,
        ip=ip,
        action="invitation.corrected",
        details={"fields": sorted(changes)},
    )


async def resend_invitation(
    db: AsyncSession, services: Services, doctor: User, invitation_id: str, *, ip: str | None
) -> tuple[Invitation, Delivery]:
    _require_inviter(doctor)
    invitation = await access_invitation(db, doctor, invitation_id)
    _require_pending(invitation, services.clock.now(), "renvoyer")
    await services.limiter.take(
        f"resend:{invitation.id}",
        limits.RESENDS_PER_INVITATION_PER_HOUR,
        limits.LOGIN_WINDOW * 4,
        "Cette invitation a été renvoyée plusieurs fois dans l'heure. Réessayez plus tard.",
    )
    return await _resend(db, services, doctor, invitation, ip=ip, action="invitation.resent")


async def _resend(
    db: AsyncSession,
    services: Services,
    doctor: User,
    invitation: Invitation,
    *,
    ip: str | None,
    action: str,
    details: dict[str, object] | None = None,
) -> tuple[Invitation, Delivery]:
    # A resent link is valid 15 days from now; the previous link stops working when the new
    # one is made (delivery.py replaces the token).
    now = services.clock.now()
    invitation.expires_at = now + limits.INVITATION_VALIDITY
    await _supersede_deliveries(db, invitation.id)
    delivery = _queue_delivery(db, services, invitation)
    audit.record(
        db,
        services.clock,
        action,
        actor_id=doctor.id,
        ip=ip,
        resource_type="invitation",
        resource_id=invitation.id,
        details=details,
    )
    await db.flush()
    return invitation, delivery


async def cancel_invitation(
    db: AsyncSession, services: Services, doctor: User, invitation_id: str, *, ip: str | None
) -> Invitation:
    _require_inviter(doctor)
    invitation = await access_invitation(db, doctor, invitation_id)
    now = services.clock.now()
    status = effective_status(invitation, now)
    if status == InvitationStatus.CANCELLED:
        return invitation  # a second click changes nothing
    if status == InvitationStatus.ACCEPTED:
        raise Conflict("Impossible d'annuler cette invitation : elle a déjà été acceptée.")
    invitation.status = InvitationStatus.CANCELLED
    invitation.status_changed_at = now
    await _supersede_deliveries(db, invitation.id)
    audit.record(
        db,
        services.clock,
        "invitation.cancelled",
        actor_id=doctor.id,
        ip=ip,
        resource_type="invitation",
        resource_id=invitation.id,
    )
    await db.flush()
    return invitation


async def list_invitations(
    db: AsyncSession, doctor: User
) -> list[tuple[Invitation, Delivery | None]]:
    _require_inviter(doctor)
    invitations = list(
        await db.scalars(
            select(Invitation)
            .where(Invitation.doctor_id == doctor.id)
            .order_by(Invitation.created_at.desc())
            .limit(500)
        )
    )
    latest: dict[str, Delivery] = {}
    if invitations:
        deliveries = await db.scalars(
            select(Delivery)
            .where(Delivery.invitation_id.in_([i.id for i in invitations]))
            .order_by(Delivery.created_at)
        )
        for delivery in deliveries:
            latest[delivery.invitation_id] = delivery
    return [(i, latest.get(i.id)) for i in invitations]


async def latest_delivery(db: AsyncSession, invitation_id: str) -> Delivery | None:
    return await db.scalar(
        select(Delivery)
        .where(Delivery.invitation_id == invitation_id)
        .order_by(Delivery.created_at.desc(), Delivery.attempts.desc())
        .limit(1)
    )


async def find_by_token(
    db: AsyncSession, services: Services, token: str
) -> tuple[Invitation, User]:
    """The invitation behind a link, for the public page. Unknown → 404; expired or
    cancelled → 410 saying so; accepted is returned (the page says so)."""
    invitation = await db.scalar(
        select(Invitation).where(Invitation.token_hash == token_hash(token))
    )
    if invitation is None:
        raise NotFound(
            "Ce lien d'invitation n'est pas valable. Vérifiez l'adresse ou demandez à votre "
            "praticien de vous renvoyer l'invitation."
        )
    status = effective_status(invitation, services.clock.now())
    if status == InvitationStatus.CANCELLED:
        raise Gone("Cette invitation a été annulée par le praticien.")
    if status == InvitationStatus.EXPIRED:
        raise Gone(
            "Cette invitation a expiré. Demandez à votre praticien de vous en envoyer une nouvelle."
        )
    doctor = await db.get(User, invitation.doctor_id)
    assert doctor is not None
    return invitation, doctor


@dataclass(frozen=True)
class Signup:
    """What a patient without an account gives when accepting."""

    password: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    birth_date: object | None = None
    privacy_accepted: bool = False


@dataclass(frozen=True)
class Acceptance:
    conversation_id: str
    patient: User
    account_created: bool


async def accept_invitation(
    db: AsyncSession,
    services: Services,
    token: str,
    *,
    user: User | None,
    signup: Signup | None,
    ip: str | None,
) -> Acceptance:
    """Accept an invitation, creating the patient's account if needed, and open the conversation.

    All of it happens in the caller's transaction. Two simultaneous accepts of the same link: the
    conditional update below lets exactly one through; the other gets 409 and its transaction
    (including any account it created) is rolled back.
    """
    invitation, doctor = await find_by_token(db, services, token)
    if invitation.status == InvitationStatus.ACCEPTED:
        raise Conflict(
            "Cette invitation a déjà été acceptée. Connectez-vous pour retrouver "
            "votre conversation."
        )
    created = False
    if user is None:
        if signup is None:
            raise InvalidInput("password : champ obligatoire pour créer votre compte")
        email = signup.email or invitation.email
        if not email:
            raise InvalidInput("email : indiquez votre adresse e-mail pour créer votre compte")
        user = await create_user(
            db,
            services,
            NewUser(
                email=email,
                password=signup.password,
                first_name=signup.first_name or invitation.first_name,
                last_name=signup.last_name or invitation.last_name,
                role=Role.PATIENT,
                phone=signup.phone or invitation.phone,
                birth_date=signup.birth_date,  # type: ignore[arg-type]
                # The link came by email to this very address: it is the person's.
                email_verified=invitation.channel == "email" and invitation.email == email,
                privacy_accepted=signup.privacy_accepted,
            ),
            actor_id=None,
            ip=ip,
        )
        if user.email_verified_at is None:
            await ask_verification(db, services, user)
        created = True
    elif user.role != Role.PATIENT:
        raise Forbidden(
            "Une invitation s'accepte avec un compte patient. Déconnectez-vous "
            "d'abord de votre compte professionnel."
        )

    now = services.clock.now()
    won = await db.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.status == InvitationStatus.PENDING)
        .values(status=InvitationStatus.ACCEPTED, status_changed_at=now, accepted_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "Cette invitation vient d'être acceptée. Connectez-vous pour retrouver "
            "votre conversation."
        )
    conversation = await open_conversation(
        db,
        services,
        practitioner_id=doctor.id,
        patient_id=user.id,
        origin="invitation",
        actor_id=user.id,
        ip=ip,
    )
    await db.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id)
        .values(conversation_id=conversation.id)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        db,
        services.clock,
        "invitation.accepted",
        actor_id=user.id,
        ip=ip,
        resource_type="invitation",
        resource_id=invitation.id,
        details={"conversation_id": conversation.id, "account_created": created},
    )
    return Acceptance(conversation.id, user, created)
