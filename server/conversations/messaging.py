"""Messages: post (idempotent, gap-free order), read history, mark read, and the state of a
conversation as one member sees it (can I write? how many unread?)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit, limits
from server.conversations.policy import ALLOWED, Away, WriteDecision, patient_may_write
from server.conversations.service import ConversationView, access_conversation, find_conversation
from server.db import insert_unless_exists
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
    new_id,
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


@dataclass(frozen=True)
class MessageView:
    message: Message
    author: User
    attachments: list[Attachment]


@dataclass(frozen=True)
class Posted:
    view: MessageView
    created: bool  # False: the same client_id was already posted; this is the first answer
    conversation: Conversation | None = None


async def write_decision(
    db: AsyncSession, services: Services, user: User, view: ConversationView
) -> WriteDecision:
    if user.role != Role.PATIENT:
        return ALLOWED
    conversation = view.conversation
    settings = await db.get(MessagingSettings, conversation.practitioner_id)
    away = None
    if settings is not None and (settings.away_from or settings.away_until):
        exceptions = await db.scalars(
            select(AwayException.patient_id).where(
                AwayException.user_id == conversation.practitioner_id
            )
        )
        away = Away(
            settings.away_from, settings.away_until, settings.away_message, frozenset(exceptions)
        )
    latest_pro = await db.scalar(
        select(Message.reply_allowed)
        .where(
            Message.conversation_id == conversation.id, Message.author_id != conversation.patient_id
        )
        .order_by(Message.seq.desc())
        .limit(1)
    )
    return patient_may_write(
        patient_id=user.id,
        practitioner_name=view.practitioner.display_name,
        patient_can_write=conversation.patient_can_write,
        practitioner_open=settings.open if settings else False,
        away=away,
        latest_professional_reply_allowed=latest_pro,
        now=services.clock.now(),
    )


async def _existing(
    db: AsyncSession, conversation_id: str, author_id: str, client_id: str
) -> Message | None:
    return await db.scalar(
        select(Message).where(
            Message.conversation_id == conversation_id,
            Message.author_id == author_id,
            Message.client_id == client_id,
        )
    )


async def post_message(
    db: AsyncSession,
    services: Services,
    user: User,
    conversation_id: str,
    new: NewMessage,
    *,
    ip: str | None,
    along: Callable[[str], None] | None = None,
) -> Posted:
    """Post a message and commit it. A retry with the same ``client_id`` returns the first
    message, also when both arrive at once (the unique constraint decides).

    ``along(message_id)`` adds rows that belong with the message (a document, a payment
    request) to the same transaction: both are written, or neither."""
    view = await find_conversation(db, user, conversation_id)
    earlier = await _existing(db, conversation_id, user.id, new.client_id)
    if earlier is not None:
        return Posted(await _view_of(db, earlier), created=False)
    if not new.body.strip() and not new.attachment_ids:
        raise InvalidInput("body : le message est vide")
    decision = await write_decision(db, services, user, view)
    if not decision.allowed:
        raise Forbidden(
            decision.reason or "Vous ne pouvez pas écrire dans cette conversation.",
            extra={
                "code": decision.code,
                "until": decision.until.isoformat() if decision.until else None,
            },
        )
    attachments = await _claim_attachments(db, user, new.attachment_ids)
    now = services.clock.now()
    # The seq comes from the conversation row, incremented in this transaction: the row lock
    # (PostgreSQL) or the write lock (SQLite) serializes posters, and a rollback gives the number
    # back, so the sequence has no gaps.
    seq = await db.scalar(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(last_seq=Conversation.last_seq + 1, last_message_at=now)
        .returning(Conversation.last_seq)
    )
    assert seq is not None
    is_patient = user.role == Role.PATIENT
    author_id = user.id
    message_id = new_id()
    values = {
        "id": message_id,
        "conversation_id": conversation_id,
        "seq": seq,
        "author_id": user.id,
        "client_id": new.client_id,
        "body": new.body.strip(),
        "reason": (new.reason or Reason.OTHER) if is_patient else None,
        "reply_allowed": True if is_patient else new.reply_allowed,
        "created_at": now,
    }
    inserted = await insert_unless_exists(
        db, Message.__table__, values, ["conversation_id", "author_id", "client_id"]
    )
    if not inserted:
        # The same client id was committed by a concurrent request: give its seq back. (After a
        # rollback every loaded object is expired: use the plain id saved above.)
        await db.rollback()
        again = await _existing(db, conversation_id, author_id, new.client_id)
        assert again is not None
        return Posted(await _view_of(db, again), created=False)
    message = Message(**values)  # as inserted; no need to read it back
    for attachment in attachments:
        attachment.message_id = message_id
    # Writing implies having read what came before.
    await _advance_read_mark(db, conversation_id, author_id, seq, now, need_result=False)
    audit.record(
        db,
        services.clock,
        "message.posted",
        actor_id=user.id,
        ip=ip,
        resource_type="conversation",
        resource_id=conversation_id,
        details={"seq": seq, "attachments": len(attachments)},
    )
    if along is not None:
        along(message_id)
    await db.commit()
    return Posted(
        MessageView(message, user, attachments), created=True, conversation=view.conversation
    )


async def _claim_attachments(
    db: AsyncSession, user: User, ids: tuple[str, ...]
) -> list[Attachment]:
    if len(ids) > limits.MESSAGE_MAX_ATTACHMENTS:
        raise InvalidInput(
            f"attachment_ids : {limits.MESSAGE_MAX_ATTACHMENTS} pièces jointes au plus par message"
        )
    if not ids:
        return []
    found = {
        a.id: a for a in await db.scalars(select(Attachment).where(Attachment.id.in_(set(ids))))
    }
    claimed = []
    for attachment_id in dict.fromkeys(ids):
        attachment = found.get(attachment_id)
        if attachment is None or attachment.uploader_id != user.id:
            raise InvalidInput(f"attachment_ids : pièce jointe inconnue ({attachment_id})")
        if attachment.message_id is not None:
            raise InvalidInput(
                f"attachment_ids : la pièce jointe {attachment_id} est déjà dans un message"
            )
        claimed.append(attachment)
    return claimed


async def replay(db: AsyncSession, message: Message) -> Posted:
    """The answer to a retry of an already posted message."""
    return Posted(await _view_of(db, message), created=False)


async def _view_of(db: AsyncSession, message: Message) -> MessageView:
    author = await db.get(User, message.author_id)
    assert author is not None
    attachments = list(
        await db.scalars(
            select(Attachment)
            .where(Attachment.message_id == message.id)
            .order_by(Attachment.created_at)
        )
    )
    return MessageView(message, author, attachments)


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
    marks = await read_marks(db, conversation_id)
    await db.commit()  # the audit record of this read
    return view, [MessageView(m, u, attachments.get(m.id, [])) for m, u in rows], marks


async def read_marks(db: AsyncSession, conversation_id: str) -> dict[str, int]:
    rows = await db.execute(
        select(ReadMark.user_id, ReadMark.last_read_seq).where(
            ReadMark.conversation_id == conversation_id
        )
    )
    return {user_id: seq for user_id, seq in rows.all()}


async def _advance_read_mark(
    db: AsyncSession,
    conversation_id: str,
    user_id: str,
    seq: int,
    now: datetime,
    *,
    need_result: bool = True,
) -> int:
    """Move a read mark forward in one statement (an upsert); never backwards, so a late
    request from an old tab cannot un-read messages."""
    dialect = db.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(ReadMark).values(
        conversation_id=conversation_id, user_id=user_id, last_read_seq=seq, read_at=now
    )
    current = ReadMark.__table__.c.last_read_seq
    stmt = stmt.on_conflict_do_update(
        index_elements=["conversation_id", "user_id"],
        set_={
            "last_read_seq": case(
                (current < stmt.excluded.last_read_seq, stmt.excluded.last_read_seq), else_=current
            ),
            "read_at": now,
        },
    )
    await db.execute(stmt)
    if not need_result:
        return seq
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
