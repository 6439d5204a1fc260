"""The background loop the application starts: find unread conversations, send what is due,
then sleep until the next poll or until a commit rings the bell (a call's join link leaves
within a second, not at the next poll)."""

from __future__ import annotations

import asyncio
import logging

from server import limits
from server.notify.unread import queue_unread
from server.notify.worker import send_due
from server.services import Services

log = logging.getLogger("teleconsult.notify")


async def notify_once(services: Services) -> int:
    """One pass of the loop (tests call it to drive the queue step by step)."""
    await queue_unread(services)
    return await send_due(services)


async def run_notifier(services: Services) -> None:
    while True:
        try:
            await notify_once(services)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notification pass failed; trying again")
        await services.bell.wait(limits.DELIVERY_POLL_INTERVAL_SECONDS)
