"""Finding what people have not read: messages, documents and payment requests (all messages
of a conversation) unread ``TC_NOTIFY_DELAY_S`` after they came make one notice per
conversation and person.

Derived from what is stored — messages, read marks, and up to which message each person was
told (``UnreadNotice``) — so posting a message costs nothing more, and a restart inside the
delay loses and doubles nothing: the next pass finds the same state.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from server import limits
from server.models import (
    Conversation,
    ConversationParticipant,
    Message,
    NoticeKind,
    ReadMark,
    UnreadNotice,
)
from server.notify.queue import add_notice, mark_told
from server.services import Services

log = logging.getLogger("teleconsult.notify")


async def queue_unread(services: Services) -> int:
    """One pass: queue a notice for each conversation and member with a message from someone
    else, unread and older than the delay, that they were not told about yet; none while they
    are on the page, none twice within one delay. Returns how many were queued."""
    now = services.clock.now()
    delay = timedelta(seconds=services.settings.notify_delay_s)
    ripe = now - delay
    async with services.sessionmaker() as db:
        conversations = (
            await db.execute(
                select(
                    Conversation.id,
                    Conversation.patient_id,
                    Conversation.practitioner_id,
                    Conversation.last_seq,
                ).where(
                    Conversation.last_message_at >= now - limits.UNREAD_NOTICE_LOOKBACK,
                    Conversation.last_message_at <= now,
                )
            )
        ).all()
        if not conversations:
            return 0
        ids = [c.id for c in conversations]
        members: dict[str, set[str]] = {
            c.id: {c.patient_id, c.practitioner_id} for c in conversations
        }
        for row in await db.execute(
            select(ConversationParticipant.conversation_id, ConversationParticipant.user_id).where(
                ConversationParticipant.conversation_id.in_(ids)
            )
        ):
            members[row.conversation_id].add(row.user_id)
        read = {
            (r.conversation_id, r.user_id): r.last_read_seq
            for r in await db.execute(
                select(ReadMark.conversation_id, ReadMark.user_id, ReadMark.last_read_seq).where(
                    ReadMark.conversation_id.in_(ids)
                )
            )
        }
        told = {
            (t.conversation_id, t.user_id): t
            for t in await db.scalars(
                select(UnreadNotice).where(UnreadNotice.conversation_id.in_(ids))
            )
        }
        candidates: list[tuple[str, str, int]] = []
        for conversation in conversations:
            for member in members[conversation.id]:
                key = (conversation.id, member)
                last_told = told.get(key)
                seen = max(read.get(key, 0), last_told.notified_seq if last_told else 0)
                if conversation.last_seq <= seen:
                    continue
                if last_told is not None and last_told.notified_at > ripe:
                    continue  # told less than one delay ago: the next notice waits
                first_unread = await db.scalar(
                    select(func.min(Message.seq)).where(
                        Message.conversation_id == conversation.id,
                        Message.seq > seen,
                        Message.author_id != member,
                        Message.created_at <= ripe,
                    )
                )
                if first_unread is not None:
                    candidates.append((conversation.id, member, conversation.last_seq))
        if not candidates:
            return 0
        present = await services.events.online({member for _, member, _ in candidates})
        queued = 0
        for conversation_id, member, seq in candidates:
            if member in present:
                continue  # the page shows it; if they leave without reading, a later pass tells
            add_notice(
                db,
                now,
                user_id=member,
                kind=NoticeKind.UNREAD,
                subject_id=conversation_id,
                dedupe_key=f"unread:{conversation_id}:{member}:{seq}",
            )
            await mark_told(db, now, conversation_id, member, seq)
            queued += 1
        try:
            await db.commit()
        except IntegrityError:
            # Another process queued the same notices in the same instant: theirs stand.
            await db.rollback()
            log.info("unread notices already queued by another process")
            return 0
        return queued
