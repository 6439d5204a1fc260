"""Security headers on every response."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(inline_scripts: Iterable[str] = ()) -> str:
    """Our own files only; an inline script runs only if it is one of ``inline_scripts``
    (allowed by its hash, so that nothing injected into a page could run)."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in inline_scripts
    )
    return (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        # A document's preview is a PDF drawn by the server, shown from a blob: in a frame.
        "frame-src 'self' blob:; "
        f"connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'{hashes}; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def inline_scripts(html: str) -> list[str]:
    """The inline scripts of a page of ours, as the browser hashes them."""
    return _INLINE_SCRIPT.findall(html)


_CSP = content_security_policy()


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # The invitation page's URL holds its token: never send it to another site.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", _CSP)
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    return response
