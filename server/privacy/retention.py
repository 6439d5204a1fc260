"""Retention: what is not kept for ever is deleted by a periodic task, each pass leaving an audit
row (issue 24; docs/data-at-rest.md).

- **Call quality samples** (``call_events`` of kind ``stats``: frame counters, loss, round-trip
  time, sent every few seconds by each page): deleted ``TC_RETAIN_CALL_SAMPLES_DAYS`` days (90 by
  default) after the call ended, once the call is coded for billing (the samples are the proof of
  video both ways); a call never coded keeps them ``UNBILLED_SAMPLES_DAYS`` (two years: the time
  an act may still be billed). The call's timeline (joined, left, ended) stays with the record.
- **Uploads never sent** (a file chosen, then the message abandoned): deleted after
  ``TC_RETAIN_UNSENT_UPLOADS_HOURS`` hours (24 by default), row and file.
- **Medical documents, messages and their files are never deleted here**: only an explicit
  administrator's action may (the legal duty to keep a medical record outlasts any default).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.conversations.stale_uploads import sweep_stale_uploads
from server.models import BillingRecord, Call, CallEvent
from server.services import Services

log = logging.getLogger("teleconsult.retention")
UNBILLED_SAMPLES_DAYS = 730
SWEEP_SECONDS = 3600.0


async def expire_call_samples(db: AsyncSession, services: Services) -> int:
    """Deletes expired quality samples in the caller's transaction; returns how many."""
    now = services.clock.now()
    horizon = now - timedelta(days=services.settings.retain_call_samples_days)
    unbilled = now - timedelta(days=UNBILLED_SAMPLES_DAYS)
    coded = exists().where(BillingRecord.call_id == Call.id)
    expired_calls = select(Call.id).where(
        Call.ended_at.is_not(None),
        Call.ended_at < horizon,
        or_(coded, Call.ended_at < unbilled),
    )
    result = await db.execute(
        delete(CallEvent)
        .where(CallEvent.kind == "stats", CallEvent.call_id.in_(expired_calls))
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if count:
        audit.record(
            db,
            services.clock,
            "retention.call_samples",
            actor_id=None,
            ip=None,
            details={
                "deleted": count,
                "older_than_days": services.settings.retain_call_samples_days,
            },
        )
    return count


async def sweep(services: Services) -> tuple[int, int]:
    """One pass: (quality samples deleted, unsent uploads deleted)."""
    async with services.sessionmaker() as db:
        samples = await expire_call_samples(db, services)
        await db.commit()
    uploads = await sweep_stale_uploads(services)
    return samples, uploads


async def run_retention(services: Services) -> None:
    while True:
        try:
            samples, uploads = await sweep(services)
            if samples or uploads:
                log.info(
                    "retention: %d call samples and %d unsent uploads deleted", samples, uploads
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("retention pass failed; trying again")
        await asyncio.sleep(SWEEP_SECONDS)
