"""Which sign-in session each socket belongs to, and closing a session's sockets when it ends.

A socket is opened with the session cookie, but the session can end while the socket stays
open: sign-out, "sign out everywhere", a password reset, an expired or idle session, a
deactivated account. A socket that outlived its session would go on receiving a patient's
messages, so:

- every event is checked against the live session (``check``): from the database at most every
  ``RECHECK_SECONDS``, and at once past the deadline read last time;
- ending a session closes its sockets at once (``end``), on every process: with Redis, the ids
  of ended sessions go over a channel that every process listens to;
- a sweep closes the sockets of sessions that expired or went idle with no event to notice it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
import socketio

from server.accounts.service import LiveSession, live_session
from server.models import User
from server.services import Services
from signaling.presence import Presence

log = logging.getLogger("teleconsult.signaling.sessions")

CHANNEL = "teleconsult:sessions-ended"
# A socket's session is read again from the database at most this often (between reads, an
# ended session reaches its sockets through ``end``); relays of ICE candidates stay cheap.
RECHECK_SECONDS = 5.0
SWEEP_SECONDS = 60.0
ENDED_MEMORY_SECONDS = 60.0

SESSION_EXPIRED = "Votre session a expiré. Reconnectez-vous."


@dataclass
class _Bound:
    user_id: str
    session_id: str
    valid_until: datetime
    checked_at: float
    cookie_key: str  # the hash of its session cookie


class SocketSessions:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        services_of_app: Callable[[], Services],
        redis_url: str | None,
    ) -> None:
        self._sio = sio
        self._services_of_app = services_of_app
        self._bound: dict[str, _Bound] = {}
        self._by_session: dict[str, set[str]] = {}
        self._redis = aioredis.from_url(redis_url, decode_responses=True) if redis_url else None
        self._reader: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        self.presence = Presence(redis_url)
        # Sessions ended lately (id → when): a connection that read one as live just before it
        # ended is refused at bind. Kept long enough to cover any connection in progress.
        self._ended: dict[str, float] = {}

    async def bind(self, sid: str, live: LiveSession, cookie_key: str) -> bool:
        """A socket connected with this session's cookie (``cookie_key``: its hash). False when
        the session ended since the connection read it: the connection must be refused, or the
        socket would outlive its session (nothing would close it)."""
        await self._start()
        self._forget_old_endings()
        if live.session_id in self._ended:
            return False
        self._bound[sid] = _Bound(
            live.user.id, live.session_id, live.valid_until, time.monotonic(), cookie_key
        )
        self._by_session.setdefault(live.session_id, set()).add(sid)
        await self.presence.arrived(live.user.id, sid)
        return True

    def _forget_old_endings(self) -> None:
        horizon = time.monotonic() - ENDED_MEMORY_SECONDS
        for session_id in [s for s, at in self._ended.items() if at < horizon]:
            del self._ended[session_id]

    def forget(self, sid: str) -> None:
        bound = self._bound.pop(sid, None)
        if bound is not None:
            self.presence.left(bound.user_id, sid)
            sids = self._by_session.get(bound.session_id)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self._by_session[bound.session_id]

    def user_id(self, sid: str) -> str | None:
        bound = self._bound.get(sid)
        return bound.user_id if bound else None

    def cookie_key(self, sid: str) -> str | None:
        bound = self._bound.get(sid)
        return bound.cookie_key if bound else None

    async def check(self, sid: str) -> bool:
        """Whether the socket's session is still live; a socket whose session is gone is closed."""
        bound = self._bound.get(sid)
        if bound is None:
            return False
        services = self._services_of_app()
        fresh = time.monotonic() - bound.checked_at < RECHECK_SECONDS
        if fresh and services.clock.now() < bound.valid_until:
            return True
        return await self.live_user(sid) is not None

    async def live_user(self, sid: str) -> tuple[Services, User] | None:
        """The socket's user, read now with its session; None (and the socket closed) if the
        session ended, expired or the account was deactivated."""
        bound = self._bound.get(sid)
        if bound is None:
            return None
        services = self._services_of_app()
        async with services.sessionmaker() as db:
            live = await live_session(db, services.clock, bound.session_id)
            if live is not None:
                db.expunge(live.user)
        if live is None:
            self.close_soon(sid, SESSION_EXPIRED)
            return None
        bound.valid_until = live.valid_until
        bound.checked_at = time.monotonic()
        return services, live.user

    async def end(self, session_ids: list[str], reason: str) -> None:
        """Closes every socket of these sessions, here and (with Redis) on every process."""
        if not session_ids:
            return
        await self._close_sessions(session_ids, reason)
        if self._redis is not None:
            await self._redis.publish(
                CHANNEL, json.dumps({"sessions": session_ids, "reason": reason})
            )

    async def _close_sessions(self, session_ids: list[str], reason: str) -> None:
        now = time.monotonic()
        for session_id in session_ids:
            self._ended[session_id] = now
        sids = [sid for s in session_ids for sid in self._by_session.get(s, ())]
        await self._close(sids, reason)

    def close_soon(self, sid: str, reason: str) -> None:
        """Closes the socket once the reply being written has gone out (the refusal reaches
        the page before the socket closes)."""
        self.forget(sid)
        task = asyncio.get_running_loop().create_task(self._close([sid], reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, sids: list[str], reason: str) -> None:
        for sid in sids:
            self.forget(sid)
            # The page learns why (it shows the sign-in page with the reason), then the socket
            # is closed by the server: no reconnection with the dead cookie will succeed.
            with contextlib.suppress(Exception):
                await self._sio.emit("session:ended", {"detail": reason}, to=sid)
            with contextlib.suppress(Exception):
                await self._sio.disconnect(sid, ignore_queue=True)

    async def _start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        if self._redis is None:
            return
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read())
        await self._ready.wait()

    async def _read(self) -> None:
        assert self._redis is not None
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        self._ready.set()
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    data: dict[str, Any] = json.loads(message["data"])
                    await self._close_sessions(
                        [str(s) for s in data.get("sessions", [])], str(data.get("reason", ""))
                    )
                except Exception:
                    log.exception("could not close the sockets of ended sessions")
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

    async def _sweep(self) -> None:
        """Sessions that expire or go idle end with no request to say so: their sockets are
        found here."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                now = self._services_of_app().clock.now()
                for sid in [s for s, b in self._bound.items() if now >= b.valid_until]:
                    await self.live_user(sid)
            except Exception:
                log.exception("session sweep failed")

    async def close(self) -> None:
        for task in (self._reader, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.presence.close()
        if self._redis is not None:
            await self._redis.aclose()
