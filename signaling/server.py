"""The socket.io server: authenticated by the session cookie, one room per conversation.

Clients never post through the socket: messages go through HTTP (one write path, one set of
checks); the socket delivers them live and lets a reconnecting client catch up from a ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import socketio
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server import limits
from server.accounts.service import resolve_session
from server.conversations import messaging
from server.conversations.serialize import message_json
from server.errors import AppError
from server.events import conversation_room, user_room
from server.http.auth import SESSION_COOKIE
from server.models import User
from server.services import Services
from server.settings import Settings

log = logging.getLogger("teleconsult.signaling")


class SocketPublisher:
    """``EventPublisher`` on socket.io: with a Redis manager, reaches every process's sockets."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

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


class SubscribeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str = Field(min_length=1, max_length=64)
    after_seq: int = Field(default=0, ge=0)


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


def _error(exc: AppError) -> dict[str, Any]:
    return {"ok": False, "status": exc.status, "detail": exc.detail}


def register_handlers(sio: socketio.AsyncServer, services_of_app: Any) -> None:
    """``services_of_app()`` returns the Services once the app has started."""

    async def current_user(sid: str) -> tuple[Services, User] | None:
        services: Services = services_of_app()
        session = await sio.get_session(sid)
        async with services.sessionmaker() as db:
            user = await db.get(User, session["user_id"])
            if user is None or not user.is_active:
                return None
            db.expunge(user)
        return services, user

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        request: web.Request | None = environ.get("aiohttp.request")
        cookie_header = environ.get("HTTP_COOKIE", "")
        cookies = SimpleCookie()
        cookies.load(cookie_header)
        token = cookies[SESSION_COOKIE].value if SESSION_COOKIE in cookies else None
        if not token:
            raise socketio.exceptions.ConnectionRefusedError("not signed in")
        services: Services = services_of_app()
        async with services.sessionmaker() as db:
            user = await resolve_session(db, services, token)
        if user is None:
            raise socketio.exceptions.ConnectionRefusedError("session expired")
        await sio.save_session(sid, {"user_id": user.id, "ip": request.remote if request else None})
        await sio.enter_room(sid, user_room(user.id))

    async def subscribe(sid: str, data: Any) -> dict[str, Any]:
        try:
            body = SubscribeBody.model_validate(data if isinstance(data, dict) else {})
        except ValidationError as exc:
            return {"ok": False, "status": 422, "detail": str(exc.errors()[0]["msg"])}
        found = await current_user(sid)
        if found is None:
            return {"ok": False, "status": 401, "detail": "Session expirée."}
        services, user = found
        session = await sio.get_session(sid)
        try:
            async with services.sessionmaker() as db:
                items: list[dict[str, Any]] = []
                after = body.after_seq
                # Enter the room first, then read: a message committed in between is both read
                # here and delivered live; the client drops the duplicate by seq.
                await sio.enter_room(sid, conversation_room(body.conversation_id))
                while True:
                    _, views, marks = await messaging.list_messages(
                        db,
                        services,
                        user,
                        body.conversation_id,
                        after_seq=after,
                        before_seq=None,
                        limit=limits.MESSAGES_PAGE_MAX,
                        ip=session.get("ip"),
                    )
                    items.extend(message_json(v, marks) for v in views)
                    if len(views) < limits.MESSAGES_PAGE_MAX:
                        break
                    after = views[-1].message.seq
        except AppError as exc:
            await sio.leave_room(sid, conversation_room(body.conversation_id))
            return _error(exc)
        return {"ok": True, "items": items}

    async def unsubscribe(sid: str, data: Any) -> dict[str, Any]:
        conversation_id = data.get("conversation_id") if isinstance(data, dict) else None
        if isinstance(conversation_id, str):
            await sio.leave_room(sid, conversation_room(conversation_id))
        return {"ok": True}

    sio.on("connect", connect)
    sio.on("conversation:subscribe", subscribe)
    sio.on("conversation:unsubscribe", unsubscribe)
