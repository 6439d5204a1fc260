"""The socket.io server: authenticated by the session cookie, one room per conversation.

Clients never post through the socket: messages go through HTTP (one write path, one set of
checks); the socket delivers them live and lets a reconnecting client catch up from a ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import socketio
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server import limits
from server.accounts.service import live_session_of_token
from server.conversations import reading
from server.conversations.serialize import message_json
from server.conversations.service import access_conversation, find_conversation
from server.errors import NotAuthenticated
from server.events import conversation_room, user_room
from server.http.auth import SESSION_COOKIE, client_ip
from server.services import Services
from server.settings import Settings
from server.tokens import token_hash
from signaling.events import SocketEvents, parse
from signaling.flood import DISCONNECTED
from signaling.sessions import SESSION_EXPIRED, SocketSessions

log = logging.getLogger("teleconsult.signaling")

# The socket.io server of an application: tests list its events from it.
SOCKET_SERVER = web.AppKey("socket_server", socketio.AsyncServer)


class SocketPublisher:
    """``EventPublisher`` on socket.io: with a Redis manager, reaches every process's sockets."""

    def __init__(self, sio: socketio.AsyncServer, sessions: SocketSessions) -> None:
        self._sio = sio
        self._sessions = sessions

    async def publish(
        self,
        event: str,
        data: dict[str, Any],
        *,
        room: str | list[str],
        skip_room: str | None = None,
    ) -> None:
        skip = None
        if skip_room is not None:
            # This process's sockets only: with Redis, those of another process in skip_room get
            # the event anyway, which costs a frame and changes nothing.
            skip = [sid for sid, _ in self._sio.manager.get_participants("/", skip_room)]
        await self._sio.emit(event, data, room=room, skip_sid=skip)

    async def end_sessions(self, session_ids: list[str], reason: str) -> None:
        await self._sessions.end(session_ids, reason)

    async def online(self, user_ids: Collection[str]) -> set[str]:
        return await self._sessions.presence.online(user_ids)


class SubscribeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str = Field(min_length=1, max_length=64)
    after_seq: int = Field(default=0, ge=0, le=limits.SEQ_MAX)


def _origin_checker(settings: Settings) -> Any:
    public = urlsplit(settings.effective_public_url)
    public_origin = f"{public.scheme}://{public.netloc}".lower()

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:
            return True  # not a browser: the session cookie still has to be valid
        own = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}".lower()
        return origin.lower() in {own, public_origin}

    return allowed


def create_socket_server(settings: Settings) -> socketio.AsyncServer:
    manager = None
    if settings.redis_url:
        manager = RedisManager(settings.redis_url, channel="teleconsult")
    return socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=_origin_checker(settings),
        # A message event stays small; attachments travel over HTTP.
        max_http_buffer_size=limits.JSON_BODY_MAX_BYTES,
        logger=False,
        engineio_logger=False,
    )


DISCONNECT_WAIT = 5.0


class RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis manager, made closable: it makes a new Redis client each time its
    listener (re)connects, and also for an emit made before that, and keeps only the last; this
    one remembers them all so that ``close`` releases every connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: list[Any] = []

    def _redis_connect(self) -> None:
        super()._redis_connect()
        self._clients.append(self.redis)

    async def close(self) -> None:
        listener = getattr(self, "thread", None)
        if isinstance(listener, asyncio.Task):
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        for client in self._clients:
            await client.aclose()
        self._clients.clear()


async def close_socket_server(sio: socketio.AsyncServer) -> None:
    """Disconnects every client and, with Redis, stops listening and closes the connections (a
    process that stops does not mind; a test that runs two applications in one does).

    Each client's disconnect runs our handlers (a participant leaves their call), then waits for
    its socket's send queue to drain; the queue of a socket whose connection has just died never
    does, and engine.io's disconnect-all would wait for it forever (seen: a server that ignored
    SIGTERM until its watchdog killed it). So each waits at most ``DISCONNECT_WAIT``."""
    sockets = dict(sio.eio.sockets)
    if sockets:
        closing = [asyncio.create_task(sio.eio.disconnect(sid)) for sid in sockets]
        _, stuck = await asyncio.wait(closing, timeout=DISCONNECT_WAIT)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        if stuck:
            log.warning("%d of %d sockets did not close cleanly", len(stuck), len(sockets))
        for socket in sockets.values():
            # engine.io sends its CLOSE packet but leaves the websocket open until the browser
            # closes it, which it does not (it tries to reconnect): the server's shutdown then
            # waited for these connections until its watchdog (20 s, exit status 1). Its writer
            # closes the websocket when its queue yields None.
            queue = getattr(socket, "queue", None)
            if isinstance(queue, asyncio.Queue):
                queue.put_nowait(None)
    await sio.shutdown()
    if isinstance(sio.manager, RedisManager):
        await sio.manager.close()


def register_handlers(
    sio: socketio.AsyncServer, services_of_app: Callable[[], Services], events: SocketEvents
) -> None:
    """``services_of_app()`` returns the Services once the app has started."""
    sessions = events.sessions

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        request: web.Request | None = environ.get("aiohttp.request")
        cookie_header = environ.get("HTTP_COOKIE", "")
        cookies = SimpleCookie()
        cookies.load(cookie_header)
        token = cookies[SESSION_COOKIE].value if SESSION_COOKIE in cookies else None
        if not token:
            raise socketio.exceptions.ConnectionRefusedError("not signed in")
        cookie_key = token_hash(token)
        if not events.flood.may_connect(cookie_key):
            # Disconnected for flooding a moment ago: refused before any database work.
            raise socketio.exceptions.ConnectionRefusedError(DISCONNECTED)
        services = services_of_app()
        ip = client_ip(request) if request else None
        limiter = services.limiter
        # Each connection costs a session lookup: an address whose cookies keep failing, or a
        # user who reconnects in a loop, is refused before that lookup.
        failures_key = f"socket-refused:{ip}"
        if await limiter.retry_after(
            failures_key, limits.SOCKET_REFUSALS_PER_ADDRESS, limits.SOCKET_CONNECT_WINDOW
        ):
            raise socketio.exceptions.ConnectionRefusedError("too many attempts")
        async with services.sessionmaker() as db:
            live = await live_session_of_token(db, services, token)
        if live is None:
            await limiter.hit(failures_key, limits.SOCKET_CONNECT_WINDOW)
            raise socketio.exceptions.ConnectionRefusedError("session expired")
        if not events.flood.may_connect(live.user.id):
            raise socketio.exceptions.ConnectionRefusedError(DISCONNECTED)
        user_key = f"socket-connect:{live.user.id}"
        if await limiter.retry_after(
            user_key, limits.SOCKET_CONNECTS_PER_USER, limits.SOCKET_CONNECT_WINDOW
        ):
            raise socketio.exceptions.ConnectionRefusedError("too many connections")
        await limiter.hit(user_key, limits.SOCKET_CONNECT_WINDOW)
        await sio.save_session(sid, {"user_id": live.user.id, "ip": ip, "audited": set()})
        if not await sessions.bind(sid, live, cookie_key):
            raise socketio.exceptions.ConnectionRefusedError("session expired")
        await sio.enter_room(sid, user_room(live.user.id))

    async def subscribe(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        body = parse(SubscribeBody, data)
        found = await sessions.live_user(sid)
        if found is None:
            raise NotAuthenticated(SESSION_EXPIRED)
        services, user = found
        session = await sio.get_session(sid)
        audited: set[str] = session.setdefault("audited", set())
        room = conversation_room(body.conversation_id)
        # Authorize before any side effect: a socket enters a conversation's room only once it
        # is known to be a member, so a refused subscribe receives nothing, ever.
        async with services.sessionmaker() as db:
            if body.conversation_id in audited:
                await find_conversation(db, user, body.conversation_id)
            else:
                # Opening a conversation is audited once per socket, not per (re)subscribe.
                await access_conversation(
                    db, services, user, body.conversation_id, ip=session.get("ip")
                )
                await db.commit()
                audited.add(body.conversation_id)
        # Enter the room, then read: a message committed in between is both read here and
        # delivered live; the client drops the duplicate by seq. Whatever fails after entering
        # leaves the room.
        await sio.enter_room(sid, room)
        try:
            items: list[dict[str, Any]] = []
            after = body.after_seq
            async with services.sessionmaker() as db:
                marks = await reading.read_marks(db, body.conversation_id)
                while True:
                    views = await reading.read_messages(
                        db,
                        body.conversation_id,
                        after_seq=after,
                        before_seq=None,
                        limit=limits.MESSAGES_PAGE_MAX,
                    )
                    items.extend(message_json(v, marks) for v in views)
                    if len(views) < limits.MESSAGES_PAGE_MAX:
                        break
                    after = views[-1].message.seq
        except BaseException:
            await sio.leave_room(sid, room)
            raise
        return {"ok": True, "items": items}

    async def unsubscribe(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        conversation_id = data.get("conversation_id")
        if isinstance(conversation_id, str):
            await sio.leave_room(sid, conversation_room(conversation_id))
        return {"ok": True}

    sio.on("connect", connect)
    events.on("conversation:subscribe", subscribe)
    events.on("conversation:unsubscribe", unsubscribe)
