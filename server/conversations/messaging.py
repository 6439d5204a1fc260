"""Messages: post (idempotent, gap-free order), read history, mark read, and the state of a
conversation as one member sees it (can I write? how many unread?)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server import audit
from server.conversations.policy import ALLOWED, Away, WriteDecision, patient_may_write
from server.conversations.service import ConversationView, access_conversation, find_conversation
from server.errors import Forbidden, InvalidInput
from server.models import (
    Attachment,
    AwayException,
    Conversation,
    Message,
    MessagingSettings,
    ReadMark,
    Role,
    User,
)
from server.services import Services


class Reason(enum.StrEnum):
    """Why a patient writes (domain.md §2)."""

    QUESTION = "question"  # question after a consultation
    TEST_RESULT = "test_result"
    APPOINTMENT = "appointment"
    ADMINISTRATIVE = "administrative"  # administrative or payment
    OTHER = "other"


@dataclass(frozen=True)
class NewMessage:
    client_id: str
    body: str
    reply_allowed: bool = True
    reason: Reason | None = None
    attachment_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A message as just written: the same fields as ``Message``, without the cost of an ORM
    object (a batch makes hundreds a second, and none is loaded back)."""

    id: str
    conversation_id: str
    seq: int
    author_id: str
    client_id: str
    body: str
    reason: str | None
    reply_allowed: bool
    created_at: datetime


@dataclass(frozen=True)
class MessageView:
    message: Message | MessageRow
    author: User
    attachments: list[Attachment]


@dataclass(frozen=True)
class Posted:
    view: MessageView
    created: bool  # False: the same client_id was already posted; this is the first answer
    # Who sees the conversation (to tell their other pages); known for new messages only.
    members: frozenset[str] = frozenset()


# The reply setting of the latest professional message (None: no professional wrote yet), as a
# column of a query on conversations. Built once.
LATEST_PROFESSIONAL_REPLY_ALLOWED = (
    select(Message.reply_allowed)
    .where(
        Message.conversation_id == Conversation.id,
        Message.author_id != Conversation.patient_id,
    )
    .order_by(Message.seq.desc())
    .limit(1)
    .correlate(Conversation)
    .scalar_subquery()
)


@dataclass(frozen=True, slots=True)
class WriteRules:
    """What of a practitioner's messaging settings decides whether a patient may write: read as
    plain columns where many conversations are decided at once (a batch of posts)."""

    open: bool
    away_from: datetime | None
    away_until: datetime | None
    away_message: str | None

    @classmethod
    def of(cls, settings: MessagingSettings | None) -> WriteRules | None:
        if settings is None:
            return None
        return cls(settings.open, settings.away_from, settings.away_until, settings.away_message)


def has_away_period(settings: MessagingSettings | WriteRules | None) -> bool:
    return settings is not None and bool(settings.away_from or settings.away_until)


def decide(
    user: User,
    practitioner_name: str,
    patient_can_write: bool | None,
    rules: WriteRules | None,
    away_exceptions: frozenset[str],
    latest_professional_reply_allowed: bool | None,
    now: datetime,
) -> WriteDecision:
    """The write rule applied to what the database says of this conversation."""
    if user.role != Role.PATIENT:
        return ALLOWED
    away = None
    if rules is not None and has_away_period(rules):
        away = Away(rules.away_from, rules.away_until, rules.away_message, away_exceptions)
    return patient_may_write(
        patient_id=user.id,
        practitioner_name=practitioner_name,
        patient_can_write=patient_can_write,
        practitioner_open=rules.open if rules else False,
        away=away,
        latest_professional_reply_allowed=latest_professional_reply_allowed,
        now=now,
    )


async def write_decision(
    db: AsyncSession, services: Services, user: User, view: ConversationView
) -> WriteDecision:
    if user.role != Role.PATIENT:
        return ALLOWED
    conversation = view.conversation
    settings = await db.get(MessagingSettings, conversation.practitioner_id)
    exceptions: frozenset[str] = frozenset()
    if has_away_period(settings):
        exceptions = frozenset(
            await db.scalars(
                select(AwayException.patient_id).where(
                    AwayException.user_id == conversation.practitioner_id
                )
            )
        )
    latest = await db.scalar(
        select(LATEST_PROFESSIONAL_REPLY_ALLOWED).where(Conversation.id == conversation.id)
    )
    return decide(
        user,
        view.practitioner.display_name,
        conversation.patient_can_write,
        WriteRules.of(settings),
        exceptions,
        latest,
        services.clock.now(),
    )


def replay(db: Session, message: Message) -> Posted:
    """The answer to a retry of an already posted message (sync: it also runs inside a batch of
    posts; from async code, ``await db.run_sync(replay, message)``)."""
    author = db.get(User, message.author_id)
    assert author is not None
    attachments = list(
        db.scalars(
            select(Attachment)
            .where(Attachment.message_id == message.id)
            .order_by(Attachment.created_at)
        )
    )
    return Posted(MessageView(message, author, attachments), created=False)


async def list_messages(
    db: AsyncSession,
    services: Services,
    user: User,
    conversation_id: str,
    *,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
    ip: str | None,
) -> tuple[ConversationView, list[MessageView], dict[str, int]]:
    """A page of messages in ``seq`` order: those after ``after_seq`` (catching up), or the
    latest ones before ``before_seq`` (scrolling back). Also returns each member's read mark."""
    view = await access_conversation(db, services, user, conversation_id, ip=ip)
    views = await read_messages(
        db, conversation_id, after_seq=after_seq, before_seq=before_seq, limit=limit
    )
    marks = await read_marks(db, conversation_id)
    await db.commit()  # the audit record of this read
    return view, views, marks


async def read_messages(
    db: AsyncSession,
    conversation_id: str,
    *,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
) -> list[MessageView]:
    """A page of one conversation's messages, for a caller that has already checked access."""
    stmt = (
        select(Message, User)
        .join(User, User.id == Message.author_id)
        .where(Message.conversation_id == conversation_id)
    )
    if after_seq is not None:
        stmt = stmt.where(Message.seq > after_seq).order_by(Message.seq).limit(limit)
        rows = list((await db.execute(stmt)).all())
    else:
        if before_seq is not None:
            stmt = stmt.where(Message.seq < before_seq)
        rows = list((await db.execute(stmt.order_by(Message.seq.desc()).limit(limit))).all())
        rows.reverse()
    attachments: dict[str, list[Attachment]] = {}
    if rows:
        for attachment in await db.scalars(
            select(Attachment)
            .where(Attachment.message_id.in_([m.id for m, _ in rows]))
            .order_by(Attachment.created_at)
        ):
            attachments.setdefault(attachment.message_id or "", []).append(attachment)
    return [MessageView(m, u, attachments.get(m.id, [])) for m, u in rows]


async def read_marks(db: AsyncSession, conversation_id: str) -> dict[str, int]:
    rows = await db.execute(
        select(ReadMark.user_id, ReadMark.last_read_seq).where(
            ReadMark.conversation_id == conversation_id
        )
    )
    return {user_id: seq for user_id, seq in rows.all()}


def _read_mark_upsert(dialect: str) -> Any:
    """Move a read mark forward in one statement, never backwards: a late request from an old
    tab cannot un-read messages. Built once per dialect; executed with one or many rows."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = cast(Table, ReadMark.__table__)
    stmt = insert(table)
    current = table.c.last_read_seq
    return stmt.on_conflict_do_update(
        index_elements=["conversation_id", "user_id"],
        set_={
            "last_read_seq": case(
                (current < stmt.excluded.last_read_seq, stmt.excluded.last_read_seq),
                else_=current,
            ),
            "read_at": stmt.excluded.read_at,
        },
    )


_READ_MARK_UPSERT = {dialect: _read_mark_upsert(dialect) for dialect in ("postgresql", "sqlite")}


def read_mark_upsert(db: Session | AsyncSession) -> Any:
    return _READ_MARK_UPSERT[db.get_bind().dialect.name]


async def _advance_read_mark(
    db: AsyncSession, conversation_id: str, user_id: str, seq: int, now: datetime
) -> int:
    await db.execute(
        read_mark_upsert(db),
        [
            {
                "conversation_id": conversation_id,
                "user_id": user_id,
                "last_read_seq": seq,
                "read_at": now,
            }
        ],
    )
    result = await db.scalar(
        select(ReadMark.last_read_seq).where(
            ReadMark.conversation_id == conversation_id, ReadMark.user_id == user_id
        )
    )
    assert result is not None
    return result


async def mark_read(
    db: AsyncSession, services: Services, user: User, conversation_id: str, up_to_seq: int
) -> int:
    view = await find_conversation(db, user, conversation_id)
    seq = min(up_to_seq, view.conversation.last_seq)
    if seq < 0:
        raise InvalidInput("up_to_seq : doit être positif")
    result = await _advance_read_mark(db, conversation_id, user.id, seq, services.clock.now())
    await db.commit()
    return result


async def unread_counts(
    db: AsyncSession, user: User, conversations: list[Conversation]
) -> dict[str, int]:
    if not conversations:
        return {}
    marks = dict(
        (
            await db.execute(
                select(ReadMark.conversation_id, ReadMark.last_read_seq).where(
                    ReadMark.user_id == user.id,
                    ReadMark.conversation_id.in_([c.id for c in conversations]),
                )
            )
        ).all()
    )
    return {c.id: max(0, c.last_seq - marks.get(c.id, 0)) for c in conversations}


async def latest_messages(
    db: AsyncSession, conversations: list[Conversation]
) -> dict[str, MessageView]:
    """The last message of each conversation, for the list."""
    wanted = [c for c in conversations if c.last_seq > 0]
    if not wanted:
        return {}
    stmt = (
        select(Message, User)
        .join(User, User.id == Message.author_id)
        .join(
            Conversation,
            and_(Conversation.id == Message.conversation_id, Conversation.last_seq == Message.seq),
        )
        .where(Conversation.id.in_([c.id for c in wanted]))
    )
    return {m.conversation_id: MessageView(m, u, []) for m, u in (await db.execute(stmt)).all()}


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
