"""Waking the notification worker at once after a commit."""

from __future__ import annotations

import asyncio
import contextlib


class Bell:
    """Wakes this process's worker at once after a commit that queued something urgent (a
    call's join link), instead of at its next poll."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def ring(self) -> None:
        if self._event is not None:
            self._event.set()

    async def wait(self, seconds: float) -> None:
        if self._event is None:
            self._event = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        self._event.clear()
