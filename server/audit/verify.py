"""Checking the audit chain from the database (``teleconsult audit verify``), and its head for
the daily line in the server log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit.chain import GENESIS, HEAD_ID, Verdict, Walker
from server.models import AuditChainHead, AuditEvent

log = logging.getLogger("teleconsult.audit")
BATCH = 2000
HEAD_LOG_SECONDS = 24 * 3600


async def head(db: AsyncSession) -> tuple[int, str]:
    row = (
        await db.execute(
            select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.id == HEAD_ID)
        )
    ).one_or_none()
    return (int(row.seq), str(row.hash)) if row else (0, GENESIS)


async def _rows(db: AsyncSession, first_seq: int) -> AsyncIterator[AuditEvent]:
    after = first_seq - 1
    while True:
        batch = list(
            await db.scalars(
                select(AuditEvent)
                .where(AuditEvent.seq > after)
                .order_by(AuditEvent.seq)
                .limit(BATCH)
            )
        )
        if not batch:
            return
        for row in batch:
            yield row
        after = batch[-1].seq
        db.expunge_all()


async def verify(db: AsyncSession, since: datetime | None = None) -> Verdict:
    """The whole chain, or from the first row written at or after ``since``."""
    first = 1
    if since is not None:
        found = await db.scalar(select(func.min(AuditEvent.seq)).where(AuditEvent.at >= since))
        if found is None:
            top = await head(db)
            return Verdict(True, 0, top[0], top[1])
        first = int(found)
    walker = Walker(await head(db), from_start=since is None)
    async for row in _rows(db, first):
        verdict = walker.feed(row)
        if verdict is not None:
            return verdict
    return walker.finish()


async def run_head_reporter(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """The chain's head in the log at start and then daily: an operator who copies it elsewhere
    can tell later that the log was not rebuilt from scratch."""
    while True:
        try:
            async with sessionmaker() as db:
                seq, digest = await head(db)
            log.info("audit chain head: seq=%d hash=%s", seq, digest)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not read the audit chain head")
        await asyncio.sleep(HEAD_LOG_SECONDS)
