"""Who has a page open right now, on any process: a notification is not sent to a person who
is on the page (domain.md §7), and a call's join link not to one already looking at it.

Each process knows its own sockets. With Redis, each signed-in socket is also a member of a
sorted set per user, scored by a deadline that this process pushes forward while the socket
lives: a process that dies leaves members that lapse on their own instead of a person who
seems online forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Collection

import redis.asyncio as aioredis

log = logging.getLogger("teleconsult.signaling.presence")

# A member is pushed forward every REFRESH_SECONDS and lapses LAPSE_SECONDS after the last push.
REFRESH_SECONDS = 20.0
LAPSE_SECONDS = 60.0


def _key(user_id: str) -> str:
    return f"teleconsult:online:{user_id}"


class Presence:
    def __init__(self, redis_url: str | None) -> None:
        self._local: dict[str, set[str]] = {}  # user id → sids on this process
        self._process = uuid.uuid4().hex[:12]
        self._redis = aioredis.from_url(redis_url, decode_responses=True) if redis_url else None
        self._refresher: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def arrived(self, user_id: str, sid: str) -> None:
        self._local.setdefault(user_id, set()).add(sid)
        if self._redis is None:
            return
        if self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh())
        with contextlib.suppress(aioredis.RedisError, OSError):
            await self._redis.zadd(
                _key(user_id), {f"{self._process}:{sid}": time.time() + LAPSE_SECONDS}
            )

    def left(self, user_id: str, sid: str) -> None:
        sids = self._local.get(user_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._local[user_id]
        if self._redis is not None:
            task = asyncio.get_running_loop().create_task(self._remove(user_id, sid))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def online(self, user_ids: Collection[str]) -> set[str]:
        here = {user_id for user_id in user_ids if user_id in self._local}
        if self._redis is None:
            return here
        now = time.time()
        for user_id in set(user_ids) - here:
            try:
                if await self._redis.zcount(_key(user_id), now, "+inf") > 0:
                    here.add(user_id)
            except (aioredis.RedisError, OSError):
                log.warning("presence unknown (Redis unreachable): %s counted absent", user_id)
        return here

    async def _remove(self, user_id: str, sid: str) -> None:
        assert self._redis is not None
        with contextlib.suppress(aioredis.RedisError, OSError):
            await self._redis.zrem(_key(user_id), f"{self._process}:{sid}")

    async def _refresh(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                deadline = time.time() + LAPSE_SECONDS
                for user_id, sids in list(self._local.items()):
                    key = _key(user_id)
                    await self._redis.zadd(key, {f"{self._process}:{s}": deadline for s in sids})
                    await self._redis.zremrangebyscore(key, "-inf", time.time())
                    await self._redis.expire(key, int(LAPSE_SECONDS * 2))
            except (aioredis.RedisError, OSError):
                log.warning("could not refresh presence in Redis")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        for task in list(self._pending):
            with contextlib.suppress(Exception):
                await task
        if self._redis is not None:
            with contextlib.suppress(aioredis.RedisError, OSError):
                for user_id, sids in self._local.items():
                    await self._redis.zrem(_key(user_id), *[f"{self._process}:{s}" for s in sids])
            await self._redis.aclose()
