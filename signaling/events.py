"""Every socket.io event goes through one gate: the socket.io twin of the HTTP middlewares.

Before a handler runs: the event is rate-limited (per socket and per user), its data must be
an object, and the socket's sign-in session must still be live. After: a domain error becomes
the same problem object as over HTTP (``{ok: false, type, title, status, detail, …}``), and an
unexpected exception becomes a 500 with a French apology, logged, instead of a handler that
never answers (socket.io's default).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.errors import AppError, MalformedRequest, NotAuthenticated, RateLimited
from server.http.auth import SESSION_COOKIE
from server.http.parsing import validation_problem
from server.http.problems import INTERNAL_ERROR_DETAIL, app_error_body, problem_body
from server.tokens import token_hash
from signaling.flood import DISCONNECTED, FLOODER_COOLDOWN_SECONDS, TOO_MANY, FloodGuard
from signaling.sessions import SESSION_EXPIRED, SocketSessions

log = logging.getLogger("teleconsult.signaling.events")


class TooManyRequests(RateLimited):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, retry_after_seconds=int(FLOODER_COOLDOWN_SECONDS))


Reply = dict[str, Any]
NOT_AN_OBJECT = "Les données de l'événement doivent être un objet."
Handler = Callable[[str, dict[str, Any]], Awaitable[Reply]]


def refusal(error: AppError) -> Reply:
    return {"ok": False, **app_error_body(error)}


def parse(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """``data`` as ``model``, or the same 422 problem as an HTTP body would get."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from exc


class SocketEvents:
    def __init__(
        self, sio: socketio.AsyncServer, sessions: SocketSessions, flood: FloodGuard
    ) -> None:
        self._sio = sio
        self.sessions = sessions
        self.flood = flood

    def middleware(self) -> Any:
        """Refuses the socket.io transport to a cookie cooling down after a flood, before
        engine.io's handshake and websocket upgrade (a script reconnecting in a loop otherwise
        costs a handshake each time)."""

        @web.middleware
        async def refuse_flooders(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.path.startswith("/socket.io/"):
                cookie = request.cookies.get(SESSION_COOKIE)
                if cookie and not self.flood.may_connect(token_hash(cookie)):
                    raise TooManyRequests(DISCONNECTED)
            response: web.StreamResponse = await handler(request)
            return response

        return refuse_flooders

    def forget(self, sid: str) -> None:
        """The socket is gone (called from the disconnect handler)."""
        self.flood.forget(sid)
        self.sessions.forget(sid)

    def on(self, name: str, handler: Handler) -> None:
        async def gate(sid: str, *args: Any) -> Reply:
            verdict = self.flood.admit(
                sid, self.sessions.user_id(sid), self.sessions.cookie_key(sid)
            )
            if verdict != "ok":
                wait = max(1, round(self.flood.retry_after(sid)))
                if verdict == "disconnect":
                    log.warning("socket %s disconnected: flooding %s", sid, name)
                    self.sessions.close_soon(sid, DISCONNECTED)
                    return refusal(RateLimited(DISCONNECTED, retry_after_seconds=wait))
                return refusal(RateLimited(TOO_MANY, retry_after_seconds=wait))
            try:
                return await self._handle(name, handler, sid, args)
            finally:
                self.flood.done(sid)

        self._sio.on(name, gate)

    async def _handle(self, name: str, handler: Handler, sid: str, args: tuple[Any, ...]) -> Reply:
        data = args[0] if args else None
        if not isinstance(data, dict):
            return refusal(MalformedRequest(NOT_AN_OBJECT))
        if not await self.sessions.check(sid):
            return refusal(NotAuthenticated(SESSION_EXPIRED))
        try:
            return await handler(sid, data)
        except AppError as exc:
            return refusal(exc)
        except Exception:
            if self.sessions.user_id(sid) is None:
                # The socket was closed while its event ran (its session ended, or it flooded):
                # nobody is left to answer.
                log.debug("socket %s closed during %s", sid, name)
            else:
                log.exception("socket event %s failed", name)
            return {
                "ok": False,
                **problem_body(500, "Internal Server Error", INTERNAL_ERROR_DETAIL),
            }
