"""Sliding-window counters for throttling (sign-in, registrations, invitations, uploads, sockets).

Two backends behind one interface: in this process's memory for a single-process install, and in
Redis when ``TC_REDIS_URL`` is set, so that N processes do not give an attacker N times the
attempts. Both count atomically: ``take`` checks and counts in one step, so 24 concurrent wrong
passwords cannot all pass a check made before any of them was counted.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import secrets
from collections import deque
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Protocol

import redis.asyncio as aioredis

from server.clock import Clock
from server.errors import RateLimited


class Counters(Protocol):
    async def take(self, key: str, limit: int, window: float, now: float) -> float | None:
        """Counts one hit if fewer than ``limit`` are in the window; otherwise the seconds until
        one more is allowed (and nothing counted)."""
        ...

    async def wait(self, key: str, limit: int, window: float, now: float) -> float | None: ...

    async def history(self, key: str, window: float, now: float) -> tuple[int, float | None]:
        """How many hits are in the window, and the time of the latest."""
        ...

    async def hit(self, key: str, window: float, now: float) -> None: ...

    async def undo(self, key: str) -> None:
        """Forgets the latest hit (an attempt counted in advance that turned out fine)."""
        ...

    async def reset(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryCounters:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    def _window(self, key: str, window: float, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self._max_keys:
                self._evict()
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - window:
            hits.popleft()
        return hits

    def _evict(self) -> None:
        # Drop the keys whose latest hit is oldest; a flood of keys cannot grow memory forever.
        oldest = sorted(self._hits, key=lambda k: self._hits[k][-1] if self._hits[k] else 0)
        for key in oldest[: len(oldest) // 2]:
            del self._hits[key]

    async def wait(self, key: str, limit: int, window: float, now: float) -> float | None:
        hits = self._window(key, window, now)
        if len(hits) < limit:
            return None
        return hits[-limit] + window - now

    async def take(self, key: str, limit: int, window: float, now: float) -> float | None:
        wait = await self.wait(key, limit, window, now)
        if wait is None:
            self._hits[key].append(now)
        return wait

    async def history(self, key: str, window: float, now: float) -> tuple[int, float | None]:
        hits = self._window(key, window, now)
        return len(hits), (hits[-1] if hits else None)

    async def hit(self, key: str, window: float, now: float) -> None:
        self._window(key, window, now).append(now)

    async def undo(self, key: str) -> None:
        hits = self._hits.get(key)
        if hits:
            hits.pop()

    async def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    async def close(self) -> None:
        return None


# One sorted set per key, scored by time; trimmed, counted and added to in one atomic step.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local count = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[3])
if count < limit then
  if ARGV[4] ~= '' then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
    redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
  end
  return nil
end
local nth = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return tostring(tonumber(nth[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1]))
"""


class RedisCounters:
    """Shared by every process of an install; keys carry a prefix derived from the install's
    secret key, so two installs (or two test runs) on one Redis never mix their counts."""

    def __init__(self, redis_url: str, secret_key: str) -> None:
        self._redis = aioredis.from_url(redis_url, decode_responses=True)
        install = hashlib.sha256(secret_key.encode()).hexdigest()[:12]
        self._prefix = f"teleconsult:rl:{install}:"

    async def _run(
        self, key: str, limit: int, window: float, now: float, member: str
    ) -> float | None:
        answer = await self._redis.eval(  # type: ignore[misc, unused-ignore]
            _TAKE, 1, self._prefix + key, repr(now), repr(window), str(limit), member
        )
        return None if answer is None else float(answer)

    async def wait(self, key: str, limit: int, window: float, now: float) -> float | None:
        return await self._run(key, limit, window, now, "")

    async def take(self, key: str, limit: int, window: float, now: float) -> float | None:
        return await self._run(key, limit, window, now, f"{now!r}:{secrets.token_hex(6)}")

    async def history(self, key: str, window: float, now: float) -> tuple[int, float | None]:
        full = self._prefix + key
        count = await self._redis.zcount(full, now - window, "+inf")
        latest = await self._redis.zrange(full, -1, -1, withscores=True)
        return int(count), (float(latest[0][1]) if latest and count else None)

    async def hit(self, key: str, window: float, now: float) -> None:
        await self._run(key, 2**31, window, now, f"{now!r}:{secrets.token_hex(6)}")

    async def undo(self, key: str) -> None:
        await self._redis.zpopmax(self._prefix + key)

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, clock: Clock, counters: Counters | None = None) -> None:
        self._clock = clock
        self._counters: Counters = counters or MemoryCounters()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    async def retry_after(self, key: str, limit: int, window: timedelta) -> int | None:
        """Seconds until one more hit is allowed, or None if it is allowed now."""
        wait = await self._counters.wait(key, limit, window.total_seconds(), self._now())
        return None if wait is None else max(1, math.ceil(wait))

    async def take(self, key: str, limit: int, window: timedelta, detail: str) -> None:
        """Check and count one hit, atomically; ``RateLimited`` (429) if the limit is reached."""
        wait = await self.try_take(key, limit, window)
        if wait is not None:
            raise RateLimited(detail, retry_after_seconds=wait)

    async def try_take(self, key: str, limit: int, window: timedelta) -> int | None:
        """``take`` without raising: None if counted, else the seconds to wait."""
        wait = await self._counters.take(key, limit, window.total_seconds(), self._now())
        return None if wait is None else max(1, math.ceil(wait))

    async def hit(self, key: str, window: timedelta) -> None:
        await self._counters.hit(key, window.total_seconds(), self._now())

    @contextlib.asynccontextmanager
    async def answers_that_tell(
        self,
        key: str,
        limit: int,
        window: timedelta,
        detail: str,
        telling: tuple[type[Exception], ...],
    ) -> AsyncIterator[None]:
        """Limits the answers that tell an outsider something (this address has an account,
        this link does not exist): the block's outcome is counted only when it raises one of
        ``telling``. Counted before the block runs, so concurrent probes cannot all pass."""
        await self.take(key, limit, window, detail)
        try:
            yield
        except telling:
            raise
        except BaseException:
            await self.undo(key)
            raise
        await self.undo(key)

    async def backoff(self, key: str, free: int, base: timedelta, cap: timedelta) -> int | None:
        """Growing delays: once ``free`` hits are in the last ``cap``, each further one must
        wait ``base × 2^(hits - free)`` (at most ``cap``) after the latest. None: go ahead;
        else the seconds to wait."""
        count, latest = await self._counters.history(key, cap.total_seconds(), self._now())
        if count < free or latest is None:
            return None
        need = min(cap.total_seconds(), base.total_seconds() * 2 ** (count - free))
        wait = latest + need - self._now()
        return max(1, math.ceil(wait)) if wait > 0 else None

    async def undo(self, key: str) -> None:
        await self._counters.undo(key)

    async def reset(self, key: str) -> None:
        await self._counters.reset(key)

    async def close(self) -> None:
        await self._counters.close()
