"""Opening conversations, finding them, and deciding who may see them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.db import insert_unless_exists
from server.errors import Forbidden, NotFound
from server.models import (
    PATIENT,
    PRACTITIONER,
    Conversation,
    ConversationParticipant,
    Role,
    SecretaryAssignment,
    User,
    new_id,
)
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
    inserted = await insert_unless_exists(
        db,
        Conversation.__table__,
        {
            "id": new_id(),
            "practitioner_id": practitioner_id,
            "patient_id": patient_id,
            "origin": origin,
            "topic": "",
            "patient_can_write": None,
            "created_at": services.clock.now(),
            "last_seq": 0,
        },
        ["practitioner_id", "patient_id", "topic"],
    )
    conversation = await _find(db, practitioner_id, patient_id)
    assert conversation is not None
    if not inserted:
        return conversation
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
            Conversation.topic == "",
        )
    )


def visible_to(user: User) -> ColumnElement[bool]:
    """The SQL condition for "this user is a member of the conversation"."""
    if user.role == Role.PATIENT:
        return Conversation.patient_id == user.id
    added = select(ConversationParticipant.conversation_id).where(
        ConversationParticipant.user_id == user.id
    )
    if user.role == Role.SECRETARY:
        doctors = select(SecretaryAssignment.doctor_id).where(
            SecretaryAssignment.secretary_id == user.id
        )
        return or_(Conversation.practitioner_id.in_(doctors), Conversation.id.in_(added))
    if user.role in {Role.DOCTOR, Role.NURSE}:
        return or_(Conversation.practitioner_id == user.id, Conversation.id.in_(added))
    return Conversation.id.is_(None)  # admins see the audit log, not conversations


class Parties(Protocol):
    """The two people every conversation is between (a ``Conversation``, or its ids alone)."""

    @property
    def patient_id(self) -> str: ...

    @property
    def practitioner_id(self) -> str: ...


def is_member(
    user: User, conversation: Parties, secretaries: set[str], participants: set[str]
) -> bool:
    """``visible_to`` in Python, for a conversation already loaded with its practitioner's
    secretaries and its added participants (a batch of posts checks many at once). The two must
    say the same: tests/security/test_membership_rule.py compares them for every role."""
    if user.role == Role.PATIENT:
        return conversation.patient_id == user.id
    if user.role == Role.SECRETARY:
        return user.id in secretaries or user.id in participants
    if user.role in {Role.DOCTOR, Role.NURSE}:
        return conversation.practitioner_id == user.id or user.id in participants
    return False


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    patient: User
    practitioner: User


async def list_conversations(
    db: AsyncSession, user: User, query: str | None = None, limit: int = 200
) -> list[ConversationView]:
    patient, practitioner = PATIENT, PRACTITIONER
    stmt = (
        select(Conversation, patient, practitioner)
        .join(patient, patient.id == Conversation.patient_id)
        .join(practitioner, practitioner.id == Conversation.practitioner_id)
        .where(visible_to(user))
        .where(Conversation.topic == "")  # tele-expertise exchanges have their own pages
        .order_by(
            func.coalesce(Conversation.last_message_at, Conversation.created_at).desc(),
            Conversation.id,
        )
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


async def find_conversation(db: AsyncSession, user: User, conversation_id: str) -> ConversationView:
    """The conversation if the user is a member; NotFound otherwise, whether it exists or not."""
    patient, practitioner = PATIENT, PRACTITIONER
    row = (
        await db.execute(
            select(Conversation, patient, practitioner)
            .join(patient, patient.id == Conversation.patient_id)
            .join(practitioner, practitioner.id == Conversation.practitioner_id)
            .where(Conversation.id == conversation_id)
            .where(visible_to(user))
        )
    ).first()
    if row is None:
        raise NotFound("Conversation introuvable.")
    return ConversationView(*row)


async def access_conversation(
    db: AsyncSession, services: Services, user: User, conversation_id: str, *, ip: str | None
) -> ConversationView:
    """``find_conversation``, written to the audit log: every read of health data is traced."""
    view = await find_conversation(db, user, conversation_id)
    audit.record(
        db,
        services.clock,
        "conversation.read",
        actor_id=user.id,
        ip=ip,
        resource_type="conversation",
        resource_id=conversation_id,
    )
    return view


async def member_ids(db: AsyncSession, conversation: Conversation) -> set[str]:
    """Everyone who sees this conversation: patient, practitioner, the practitioner's
    secretaries, and added participants."""
    secretaries = select(SecretaryAssignment.secretary_id).where(
        SecretaryAssignment.doctor_id == conversation.practitioner_id
    )
    added = select(ConversationParticipant.user_id).where(
        ConversationParticipant.conversation_id == conversation.id
    )
    others = await db.scalars(union_all(secretaries, added))
    return {conversation.patient_id, conversation.practitioner_id, *others}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def add_participant(
    db: AsyncSession,
    services: Services,
    user: User,
    conversation_id: str,
    participant_id: str,
    *,
    ip: str | None,
) -> User:
    """A professional member adds a colleague (nurse, doctor, secretary) to the conversation."""
    if not user.role_enum.is_professional:
        raise Forbidden("Seul un professionnel peut ajouter un participant.")
    view = await find_conversation(db, user, conversation_id)
    participant = await db.get(User, participant_id)
    if (
        participant is None
        or not participant.role_enum.is_professional
        or not participant.is_active
    ):
        raise NotFound("Professionnel introuvable.")
    if participant.id in await member_ids(db, view.conversation):
        return participant
    db.add(
        ConversationParticipant(
            conversation_id=conversation_id,
            user_id=participant.id,
            added_by_id=user.id,
            added_at=services.clock.now(),
        )
    )
    audit.record(
        db,
        services.clock,
        "conversation.participant_added",
        actor_id=user.id,
        ip=ip,
        resource_type="conversation",
        resource_id=conversation_id,
        details={"participant_id": participant.id},
    )
    await db.commit()
    return participant


async def set_patient_can_write(
    db: AsyncSession,
    services: Services,
    user: User,
    conversation_id: str,
    value: bool | None,
    *,
    ip: str | None,
) -> ConversationView:
    if not user.role_enum.is_professional:
        raise Forbidden("Seul un professionnel peut régler qui peut écrire dans la conversation.")
    view = await find_conversation(db, user, conversation_id)
    view.conversation.patient_can_write = value
    audit.record(
        db,
        services.clock,
        "conversation.patient_can_write",
        actor_id=user.id,
        ip=ip,
        resource_type="conversation",
        resource_id=conversation_id,
        details={"value": value},
    )
    await db.commit()
    return view
