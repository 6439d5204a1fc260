"""HTTP plumbing of who is calling: the client's address, the session cookie, the CSRF check.
Who the cookie belongs to is the accounts feature's (``server/accounts/auth.py``)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from server.errors import Forbidden
from server.http.keys import services_of
from server.limits import SESSION_LIFETIME

SESSION_COOKIE = "tc_session"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def client_ip(request: web.Request) -> str | None:
    """The client's address: the peer's, or, when the peer is one of ``TC_TRUSTED_PROXIES``, the
    address that proxy saw (the right-most X-Forwarded-For entry that is not itself a trusted
    proxy). Without it, every user behind a proxy shares the proxy's address (and its throttles)."""
    return forwarded_for(
        request.remote, request.headers.getall("X-Forwarded-For", []), trusted_networks(request)
    )


def trusted_networks(request: web.Request) -> list[IPNetwork]:
    return [
        ipaddress.ip_network(p, strict=False) for p in services_of(request).settings.trusted_proxies
    ]


def forwarded_for(peer: str | None, headers: list[str], trusted: list[IPNetwork]) -> str | None:
    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if peer is None or not trusted or not is_trusted(peer):
        return peer
    hops = [h.strip() for header in headers for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a garbled header: the proxy's own address, not the client's text
    return peer


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
