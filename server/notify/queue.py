"""Putting notifications in the queue, inside the caller's transaction (the caller commits).

A notice is written with the event that causes it (a call and its notice commit together, or
neither does) and sent afterwards by ``notify.worker``, which decides the channels and whether
it is still worth sending. ``dedupe_key`` makes each notice once per event and person.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.models import Conversation, Notice, NoticeKind, NoticeStatus, UnreadNotice


def add_notice(
    db: AsyncSession,
    now: datetime,
    *,
    user_id: str | None,
    kind: NoticeKind,
    subject_id: str,
    dedupe_key: str,
) -> Notice:
    notice = Notice(
        user_id=user_id,
        kind=kind,
        subject_id=subject_id,
        dedupe_key=dedupe_key,
        status=NoticeStatus.QUEUED,
        attempts=0,
        channels_sent="",
        created_at=now,
        next_attempt_at=now,
    )
    db.add(notice)
    return notice


async def mark_told(
    db: AsyncSession, now: datetime, conversation_id: str, user_id: str, seq: int
) -> None:
    """The person was told about the conversation up to ``seq``: no unread notice for it."""
    told = await db.get(UnreadNotice, (conversation_id, user_id))
    if told is None:
        db.add(
            UnreadNotice(
                conversation_id=conversation_id, user_id=user_id, notified_seq=seq, notified_at=now
            )
        )
    elif told.notified_seq < seq:
        told.notified_seq = seq
        told.notified_at = now


async def call_started(
    db: AsyncSession, now: datetime, call_id: str, conversation: Conversation
) -> None:
    """The patient gets the join link (``worker`` skips it if they are on the page). The call's
    message in the conversation needs no second, "unread", notice."""
    add_notice(
        db,
        now,
        user_id=conversation.patient_id,
        kind=NoticeKind.CALL_STARTED,
        subject_id=call_id,
        dedupe_key=f"call:{call_id}:{conversation.patient_id}",
    )
    await db.flush()
    last_seq = await db.scalar(
        select(Conversation.last_seq).where(Conversation.id == conversation.id)
    )
    await mark_told(db, now, conversation.id, conversation.patient_id, last_seq or 0)


def nurse_invited(db: AsyncSession, now: datetime, call_id: str, nurse_id: str) -> None:
    add_notice(
        db,
        now,
        user_id=nurse_id,
        kind=NoticeKind.CALL_STARTED,
        subject_id=call_id,
        dedupe_key=f"call:{call_id}:{nurse_id}",
    )


def contact_requested(
    db: AsyncSession, now: datetime, request_id: str, practitioner_id: str
) -> None:
    add_notice(
        db,
        now,
        user_id=practitioner_id,
        kind=NoticeKind.CONTACT_REQUEST,
        subject_id=request_id,
        dedupe_key=f"contact:{request_id}",
    )
