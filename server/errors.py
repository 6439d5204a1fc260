"""The error catalogue: domain exceptions that the HTTP layer renders as problem+json (RFC 9457).

Domain code raises these; it never builds HTTP responses. ``detail`` is written for the person
using the page (in French, as the UI), ``title`` is the standard English phrase for the status.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 400
    type_slug = "bad-request"
    title = "Bad Request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}


class InvalidInput(AppError):
    status = 422
    type_slug = "invalid-input"
    title = "Unprocessable Content"


class MalformedRequest(AppError):
    status = 400
    type_slug = "malformed-request"
    title = "Bad Request"


class NotAuthenticated(AppError):
    status = 401
    type_slug = "not-authenticated"
    title = "Unauthorized"


class Forbidden(AppError):
    status = 403
    type_slug = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    """Unknown, or not the caller's: the same answer, so ids of others' resources leak nothing."""

    status = 404
    type_slug = "not-found"
    title = "Not Found"


class Conflict(AppError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class Gone(AppError):
    status = 410
    type_slug = "gone"
    title = "Gone"


class TooLarge(AppError):
    status = 413
    type_slug = "too-large"
    title = "Content Too Large"


class UnsupportedMediaType(AppError):
    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported Media Type"


class RateLimited(AppError):
    status = 429
    type_slug = "rate-limited"
    title = "Too Many Requests"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)
