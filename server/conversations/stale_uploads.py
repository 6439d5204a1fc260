"""Uploads that were never posted: removed after a day (``TC_RETAIN_UNSENT_UPLOADS_HOURS``),
with an audit row; run by the retention task (server/privacy/retention.py).

A page uploads a file before the message that carries it is sent; a person who changes their
mind (or a script) leaves the file behind. Nobody but the uploader can reach such a file, and
nobody will: after the delay its row and its file are deleted (each row has a file of its own
since files are sealed under random names).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.models import Attachment
from server.services import Services

log = logging.getLogger("teleconsult.uploads")


async def expire_stale_uploads(db: AsyncSession, services: Services) -> list[str]:
    """Deletes the rows of uploads never posted and older than the limit, in the caller's
    transaction; returns their stored files' names, which the caller removes once this is
    committed."""
    horizon = services.clock.now() - timedelta(hours=services.settings.retain_unsent_uploads_hours)
    stale = list(
        await db.scalars(
            select(Attachment).where(
                Attachment.message_id.is_(None), Attachment.created_at < horizon
            )
        )
    )
    if not stale:
        return []
    for attachment in stale:
        audit.record(
            db,
            services.clock,
            "attachment.expired",
            actor_id=None,
            ip=None,
            resource_type="attachment",
            resource_id=attachment.id,
            details={"uploader_id": attachment.uploader_id, "size": attachment.size},
        )
    await db.execute(delete(Attachment).where(Attachment.id.in_([a.id for a in stale])))
    return sorted(a.storage_name for a in stale if a.storage_name)


async def sweep_stale_uploads(services: Services) -> int:
    """One pass: rows deleted and committed, then their files removed."""
    async with services.sessionmaker() as db:
        orphans = await expire_stale_uploads(db, services)
        await db.commit()
    for name in orphans:
        await services.attachments.delete(name)
    return len(orphans)
