"""Requests past their promised delay: the whole line is reminded once; if still unanswered
after half the delay again (at least 4 hours), the requester is told once, so they can call or
send the patient elsewhere (domain.md §5). Runs with the other periodic tasks."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.expertise import lines as line_rules
from server.expertise.requests import OPEN_STATES
from server.models import ExpertiseLine, ExpertiseRequest, NoticeKind
from server.notify.queue import add_notice
from server.services import Services

log = logging.getLogger("teleconsult.expertise")
SWEEP_SECONDS = 300.0
MIN_REQUESTER_WAIT = timedelta(hours=4)


async def remind_late(db: AsyncSession, services: Services) -> tuple[int, int]:
    """In the caller's transaction: (lines reminded, requesters told)."""
    now = services.clock.now()
    reminded = told = 0
    late = list(
        await db.scalars(
            select(ExpertiseRequest).where(
                ExpertiseRequest.status.in_(OPEN_STATES),
                ExpertiseRequest.due_at < now,
                ExpertiseRequest.requester_told_at.is_(None),
            )
        )
    )
    for request in late:
        if request.line_reminded_at is None:
            done = await db.execute(
                update(ExpertiseRequest)
                .where(
                    ExpertiseRequest.id == request.id, ExpertiseRequest.line_reminded_at.is_(None)
                )
                .values(line_reminded_at=now)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another process reminded it
            members = (
                await line_rules.member_ids(db, request.line_id)
                if request.line_id
                else [request.expert_id or request.requester_id]
            )
            for member in members:
                add_notice(
                    db,
                    now,
                    user_id=member,
                    kind=NoticeKind.EXPERTISE_LATE,
                    subject_id=request.id,
                    dedupe_key=f"expertise-late:{request.id}:{member}",
                )
            reminded += 1
            continue
        line = await db.get(ExpertiseLine, request.line_id) if request.line_id else None
        delay = timedelta(hours=line.delay_hours if line else 72)
        if now < request.due_at + max(delay / 2, MIN_REQUESTER_WAIT):
            continue
        done = await db.execute(
            update(ExpertiseRequest)
            .where(ExpertiseRequest.id == request.id, ExpertiseRequest.requester_told_at.is_(None))
            .values(requester_told_at=now)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            continue
        add_notice(
            db,
            now,
            user_id=request.requester_id,
            kind=NoticeKind.EXPERTISE_LATE_REQUESTER,
            subject_id=request.id,
            dedupe_key=f"expertise-late-requester:{request.id}",
        )
        told += 1
    return reminded, told


async def sweep(services: Services) -> tuple[int, int]:
    async with services.sessionmaker() as db:
        counts = await remind_late(db, services)
        await db.commit()
    return counts


async def run_reminders(services: Services) -> None:
    while True:
        try:
            await sweep(services)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("tele-expertise reminders failed; trying again")
        await asyncio.sleep(SWEEP_SECONDS)
