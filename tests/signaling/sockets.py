"""A socket.io client per browser tab, signed in with the Client's session cookie."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from tests.helpers import Client


class Tab:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list[dict[str, Any]]] = {}
        self._arrived = asyncio.Condition()
        for name in (
            "message:new",
            "message:read",
            "conversation:state",
            "conversation:activity",
            "session:ended",
            "call:ring",
            "call:peer-joined",
            "call:peer-ready",
            "call:peer-left",
            "call:signal",
            "call:ended",
            "call:replaced",
            "call:peer-check",
            "call:peer-quality",
        ):
            self.sio.on(name, self._recorder(name))
        # Set when the server closes the socket (or it is lost): the sentinel tests wait for.
        self.closed = asyncio.Event()
        self.sio.on("disconnect", self._on_disconnect)

    async def _on_disconnect(self, *_: Any) -> None:
        self.closed.set()

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            async with self._arrived:
                self.events.setdefault(name, []).append(data)
                self._arrived.notify_all()

        return record

    async def connect(self, *, origin: str | None = None, cookie: str | None = None) -> None:
        token = cookie
        if token is None:
            token = next(c.value for c in self.client.session.cookie_jar if c.key == "tc_session")
        await self.sio.connect(
            self.client.origin,
            headers={"Cookie": f"tc_session={token}", "Origin": origin or self.client.origin},
            transports=["websocket"],
            wait_timeout=5,
        )

    async def subscribe(self, conversation_id: str, after_seq: int = 0) -> dict[str, Any]:
        reply: dict[str, Any] = await self.sio.call(
            "conversation:subscribe",
            {"conversation_id": conversation_id, "after_seq": after_seq},
            timeout=5,
        )
        return reply

    async def wait_for(self, name: str, count: int = 1, within: float = 5) -> list[dict[str, Any]]:
        async def enough() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.events.get(name, [])) >= count)

        await asyncio.wait_for(enough(), within)
        return self.events[name]

    async def wait_closed(self, within: float = 5) -> None:
        await asyncio.wait_for(self.closed.wait(), within)

    async def close(self) -> None:
        await self.sio.disconnect()
