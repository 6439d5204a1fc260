"""Who is calling: the session cookie, the CSRF check, and role requirements."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.service import resolve_session
from server.errors import Forbidden, NotAuthenticated
from server.http.keys import services_of
from server.limits import SESSION_LIFETIME
from server.models import Role, User

SESSION_COOKIE = "tc_session"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def client_ip(request: web.Request) -> str | None:
    return request.remote


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Cookie sessions ride along with cross-site requests, so unsafe methods must come from our
    own pages: the Origin (or, failing that, the Referer) must be this server's."""
    # socket.io's transport checks the Origin itself (signaling/server.py).
    if (
        request.method in UNSAFE_METHODS
        and SESSION_COOKIE in request.cookies
        and not request.path.startswith("/socket.io/")
    ):
        allowed = {
            f"{request.scheme}://{request.host}".lower(),
            _origin_of(services_of(request).public_url),
        }
        source = request.headers.get("Origin") or request.headers.get("Referer")
        if not source:
            raise Forbidden("Requête refusée : en-tête Origin absent (protection CSRF).")
        if _origin_of(source) not in allowed:
            raise Forbidden("Requête refusée : elle ne vient pas de ce site (protection CSRF).")
    return await handler(request)


async def optional_user(request: web.Request, db: AsyncSession) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await resolve_session(db, services_of(request), token)


async def require_user(request: web.Request, db: AsyncSession, *roles: Role) -> User:
    user = await optional_user(request, db)
    if user is None:
        raise NotAuthenticated("Vous n'êtes pas connecté, ou votre session a expiré.")
    if roles and user.role not in roles:
        raise Forbidden("Votre profil ne permet pas cette action.")
    return user


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=services_of(request).settings.secure_cookies,
        path="/",
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
