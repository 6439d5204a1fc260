"""Reading a conversation: its history by pages, read marks (which never move backwards),
unread counts and the latest message of each conversation in a list."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server.conversations.model import MessageView
from server.conversations.service import ConversationView, access_conversation, find_conversation
from server.errors import InvalidInput
from server.models import Attachment, Conversation, Message, ReadMark, User
from server.services import Services


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
