"""One middleware turning every error into application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from server.errors import AppError, RateLimited

log = logging.getLogger("teleconsult.errors")

PROBLEM_TYPE_BASE = "https://teleconsult.example/problems/"

# Details for the errors aiohttp raises itself (routing, body size), in the UI's language.
_HTTP_DETAILS = {
    404: "Cette adresse n'existe pas.",
    405: "Cette méthode n'est pas acceptée à cette adresse.",
    413: "La requête est trop volumineuse.",
}


INTERNAL_ERROR_DETAIL = "Une erreur inattendue est survenue. Réessayez dans un instant."


def problem_body(
    status: int,
    title: str,
    detail: str,
    *,
    type_slug: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem's JSON object: the body of an HTTP error, and of a socket.io refusal (beside
    ``ok: false``), so a page reads both the same way."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + type_slug if type_slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if extra:
        body.update(extra)
    return body


def app_error_body(error: AppError) -> dict[str, Any]:
    body = problem_body(
        error.status, error.title, error.detail, type_slug=error.type_slug, extra=error.extra
    )
    if isinstance(error, RateLimited):
        body["retry_after"] = error.retry_after_seconds
    return body


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    type_slug: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = problem_body(status, title, detail, type_slug=type_slug, extra=extra)
    return web.json_response(
        body, status=status, content_type="application/problem+json", headers=headers
    )


def _from_app_error(error: AppError) -> web.Response:
    headers = None
    if isinstance(error, RateLimited):
        headers = {"Retry-After": str(error.retry_after_seconds)}
    return problem_response(
        error.status,
        error.title,
        error.detail,
        type_slug=error.type_slug,
        extra=error.extra,
        headers=headers,
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AppError as error:
        return _from_app_error(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = _HTTP_DETAILS.get(exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return problem_response(exc.status, exc.reason, detail, headers=headers or None)
    except Exception:
        # Internals stay in the log; the person gets a plain apology and no stack trace.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "Internal Server Error", INTERNAL_ERROR_DETAIL)
