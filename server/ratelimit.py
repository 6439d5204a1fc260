"""Sliding-window counters for throttling (login failures, invitations, requests).

In memory: each process counts on its own. That bounds abuse per process, which is what a
single-node install needs; a multi-node install shares nothing here yet (see the README).
"""

from __future__ import annotations

import math
from collections import deque
from datetime import timedelta

from server.clock import Clock
from server.errors import RateLimited


class RateLimiter:
    def __init__(self, clock: Clock, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _window(self, key: str, window: timedelta) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self._max_keys:
                self._evict()
            hits = self._hits[key] = deque()
        horizon = self._now() - window.total_seconds()
        while hits and hits[0] <= horizon:
            hits.popleft()
        return hits

    def _evict(self) -> None:
        # Drop the keys whose latest hit is oldest; a flood of keys cannot grow memory forever.
        oldest = sorted(self._hits, key=lambda k: self._hits[k][-1] if self._hits[k] else 0)
        for key in oldest[: len(oldest) // 2]:
            del self._hits[key]

    def retry_after(self, key: str, limit: int, window: timedelta) -> int | None:
        """Seconds until one more hit is allowed, or None if it is allowed now."""
        hits = self._window(key, window)
        if len(hits) < limit:
            return None
        return math.ceil(hits[0] + window.total_seconds() - self._now())

    def check(self, key: str, limit: int, window: timedelta, detail: str) -> None:
        wait = self.retry_after(key, limit, window)
        if wait is not None:
            raise RateLimited(detail, retry_after_seconds=wait)

    def hit(self, key: str, window: timedelta) -> None:
        self._window(key, window).append(self._now())

    def take(self, key: str, limit: int, window: timedelta, detail: str) -> None:
        """Check then count one hit."""
        self.check(key, limit, window, detail)
        self.hit(key, window)

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)
