"""Sealing the files earlier versions stored in clear (``uploads/ab/<sha256>``), at start-up.

A database migration cannot do it: it has no data key. Each pass takes a batch of attachments
without a sealed file, seals a copy of each (its own file: two rows of the same content no longer
share one), points the row at it with a conditional update (several processes starting at once
seal each file once; the loser removes its copy), and removes a clear file once no row needs it.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select, update

from server import audit
from server.models import Attachment
from server.services import Services

log = logging.getLogger("teleconsult.storage")
BATCH = 100


async def seal_plain_files(services: Services) -> int:
    """Seal every clear file; returns how many were sealed."""
    store = services.attachments
    sealed = 0
    tried: set[str] = set()
    while True:
        async with services.sessionmaker() as db:
            query = select(Attachment).where(Attachment.storage_name.is_(None)).limit(BATCH)
            if tried:
                query = query.where(Attachment.id.not_in(tried))
            rows = list(await db.scalars(query))
            if not rows:
                break
            contents: set[str] = set()
            for row in rows:
                tried.add(row.id)
                if row.sha256 is None:
                    continue
                contents.add(row.sha256)
                stored = await asyncio.to_thread(store.seal_plain, row.sha256)
                if stored is None:
                    log.error("attachment %s: its file %s is missing", row.id, row.sha256)
                    continue
                done = await db.execute(
                    update(Attachment)
                    .where(Attachment.id == row.id, Attachment.storage_name.is_(None))
                    .values(storage_name=stored.name, sha256=None)
                )
                if done.rowcount == 1:  # type: ignore[attr-defined]
                    sealed += 1
                else:
                    await store.delete(stored.name)  # another process sealed it first
            audit.record(
                db,
                services.clock,
                "files.sealed",
                actor_id=None,
                ip=None,
                details={"attachments": len(rows)},
            )
            await db.commit()
            still_needed = set(
                await db.scalars(select(Attachment.sha256).where(Attachment.sha256.in_(contents)))
            )
        for sha256 in contents - still_needed:
            await asyncio.to_thread(store.remove_plain, sha256)
    if sealed:
        log.info("sealed %d files stored in clear by an earlier version", sealed)
    return sealed
