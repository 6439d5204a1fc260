"""Where the SFU side of calls runs, as the call routes see it: its figures. The signaling layer
provides it (``signaling.media_router.MediaRouter``); ``server/`` knows only this interface."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web


class SfuFigures(Protocol):
    async def stats(self, call_id: str) -> list[dict[str, Any]]:
        """Per-track figures of one call, as forwarded by the server."""
        ...

    async def metrics(self) -> dict[str, Any]:
        """Totals and current flows over every call (no call or person named)."""
        ...


SFU_CALLS = web.AppKey("sfu_calls", SfuFigures)
