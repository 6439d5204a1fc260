"""Which app process runs each SFU call when several processes share Redis (``TC_REDIS_URL``).

A page's socket may be on any process, but an SFU call's server side (one peer connection per
participant, the room that forwards between them) must live in one. The first process through
which a participant joins claims the call in Redis; the others hand that process what their
pages send for the call (join, signals, leave) and ask it for the call's figures. Nothing is
needed the other way: socket.io's Redis manager already takes the server's signals to a page's
socket on whichever process holds it.

A process that no longer listens (stopped, crashed) took its calls' connections with it: the
next join of such a call claims it anew, and the pages' connections start again there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger("teleconsult.signaling.sfu_owners")

PREFIX = "teleconsult:sfu"
CLAIM_SECONDS = 12 * 3600  # longer than any consultation; renewed at each join
ASK_TIMEOUT = 10

# Replace the owner only if it is still the one found gone (another process may have already).
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return redis.call('GET', KEYS[1])
"""

# (operation, data) → the answer, on the owning process.
Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class OwnerGone(Exception):
    """The process that runs the call does not listen any more."""


class RemoteError(Exception):
    """The owning process could not do what was asked (the reason is in its log too)."""


class SfuOwners:
    def __init__(self, redis_url: str, handler: Handler) -> None:
        self.process_id = secrets.token_hex(8)
        self._redis = aioredis.from_url(redis_url, decode_responses=True)
        self._handler = handler
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @staticmethod
    def _key(call_id: str) -> str:
        return f"{PREFIX}:owner:{call_id}"

    @staticmethod
    def _channel(process_id: str) -> str:
        return f"{PREFIX}:process:{process_id}"

    async def _start(self) -> None:
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())
        await self._ready.wait()

    async def owner(self, call_id: str, *, claim: bool = False) -> str | None:
        """The process running the call; with ``claim``, this one if none does yet."""
        await self._start()
        key = self._key(call_id)
        if claim:
            await self._redis.set(key, self.process_id, nx=True, ex=CLAIM_SECONDS)
        found = await self._redis.get(key)
        owner = None if found is None else str(found)
        if claim and owner == self.process_id:
            await self._redis.expire(key, CLAIM_SECONDS)
        return owner

    async def take_over(self, call_id: str, gone: str) -> str:
        """The call's owner ``gone`` does not listen: this process claims the call (unless
        another already has); returns the owner now."""
        owner = await self._redis.eval(
            _TAKE_OVER, 1, self._key(call_id), gone, self.process_id, str(CLAIM_SECONDS)
        )
        return str(owner)

    async def ask(self, owner: str, op: str, data: dict[str, Any]) -> Any:
        """Has ``owner`` do ``op`` on its SFU and returns its answer."""
        await self._start()
        request_id = secrets.token_hex(8)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        message = {"id": request_id, "op": op, "data": data, "reply_to": self.process_id}
        try:
            if not await self._redis.publish(self._channel(owner), json.dumps(message)):
                raise OwnerGone(owner)
            return await asyncio.wait_for(answer, ASK_TIMEOUT)
        finally:
            self._waiting.pop(request_id, None)

    async def _read(self) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._channel(self.process_id))
        self._ready.set()
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    await self._receive(json.loads(message["data"]))
                except Exception:
                    log.exception("SFU request from another process failed")
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

    async def _receive(self, message: dict[str, Any]) -> None:
        if message.get("op") == "reply":
            waiting = self._waiting.get(str(message.get("id")))
            if waiting is not None and not waiting.done():
                if "error" in message:
                    waiting.set_exception(RemoteError(message["error"]))
                else:
                    waiting.set_result(message.get("result"))
            return
        # In the order they were published: a page's answer before its next candidates.
        reply: dict[str, Any] = {"op": "reply", "id": message.get("id")}
        try:
            reply["result"] = await self._handler(str(message.get("op")), message.get("data", {}))
        except Exception as exc:
            log.warning("SFU %s from another process refused: %r", message.get("op"), exc)
            reply["error"] = type(exc).__name__
        await self._redis.publish(self._channel(str(message.get("reply_to"))), json.dumps(reply))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._redis.aclose()
