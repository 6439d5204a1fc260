"""``Idempotency-Key`` on creating requests (IETF httpapi draft, api.md §Idempotent creation).

A ``POST`` that carries the header, from a signed-in user, is run once per (user, key) within
24 h: the same key again returns the first answer (same status, same body, and
``Idempotent-Replayed: true``) and creates nothing more; the same key with another method, path
or body is refused (422); the same key while the first is still running gets 409. Only
successful answers are kept: a refused request may be corrected and sent again with its key.

Who the user is comes from the app (``IDEMPOTENCY_OWNER``, set by the accounts feature), so this
plumbing imports no feature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server import limits
from server.errors import Conflict, InvalidInput
from server.http.keys import services_of
from server.http.parsing import RAW_BODY, read_body
from server.models import IdempotentRequest

HEADER = "Idempotency-Key"
KEPT_FOR = timedelta(hours=24)
MAX_KEY = 255

# (request, database) → the signed-in user's id, or None.
Owner = Callable[[web.Request, AsyncSession], Awaitable[str | None]]
IDEMPOTENCY_OWNER: web.AppKey[Owner] = web.AppKey("idempotency_owner")


async def _fingerprint(request: web.Request) -> str:
    digest = hashlib.sha256(f"{request.method} {request.path_qs}\n".encode())
    if request.content_type.startswith("multipart/"):
        # An upload: its parts' boundary changes with every sending; the path decides.
        return digest.hexdigest()
    body = await read_body(
        request,
        limits.JSON_BODY_MAX_BYTES,
        f"Le corps de la requête dépasse {limits.JSON_BODY_MAX_BYTES // 1024} Kio.",
    )
    request[RAW_BODY] = body  # the handler reads it from here
    digest.update(body)
    return digest.hexdigest()


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get(HEADER)
    owner_of = request.app.get(IDEMPOTENCY_OWNER)
    if request.method != "POST" or key is None or owner_of is None:
        return await handler(request)
    if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise InvalidInput(f"En-tête {HEADER} : de 1 à {MAX_KEY} caractères imprimables.")
    services = services_of(request)
    async with services.sessionmaker() as db:
        owner = await owner_of(request, db)
    if owner is None:
        return await handler(request)  # signed out: the handler answers (401, or sign-in)
    fingerprint = await _fingerprint(request)
    now = services.clock.now()
    async with services.sessionmaker() as db:
        await db.execute(
            delete(IdempotentRequest).where(
                IdempotentRequest.user_id == owner,
                IdempotentRequest.key == key,
                IdempotentRequest.created_at < now - KEPT_FOR,
            )
        )
        first = await db.scalar(
            select(IdempotentRequest).where(
                IdempotentRequest.user_id == owner, IdempotentRequest.key == key
            )
        )
        if first is None:
            mine = IdempotentRequest(
                user_id=owner, key=key, fingerprint=fingerprint, created_at=now
            )
            db.add(mine)
            try:
                await db.commit()
            except IntegrityError:
                # The same key arrived twice at once: the other one runs.
                raise Conflict("Cette action est déjà en cours ; patientez un instant.") from None
    if first is not None:
        return _replay(first, fingerprint)
    try:
        response = await handler(request)
    except BaseException:
        await _forget(services.sessionmaker, mine.id)
        raise
    if 200 <= response.status < 300 and isinstance(response, web.Response):
        body = response.body if isinstance(response.body, bytes) else b""
        async with services.sessionmaker() as db:
            kept = await db.get_one(IdempotentRequest, mine.id)
            kept.status = response.status
            kept.content_type = response.content_type
            kept.body = body
            await db.commit()
    else:
        await _forget(services.sessionmaker, mine.id)
    return response


def _replay(first: IdempotentRequest, fingerprint: str) -> web.Response:
    if first.fingerprint != fingerprint:
        raise InvalidInput(
            f"Cette clé {HEADER} a déjà servi pour une autre requête : "
            "une nouvelle action demande une nouvelle clé."
        )
    if first.status is None:
        raise Conflict("Cette action est déjà en cours ; patientez un instant.")
    return web.Response(
        status=first.status,
        body=first.body or b"",
        content_type=first.content_type or "application/json",
        headers={"Idempotent-Replayed": "true"},
    )


async def _forget(sessionmaker: Callable[[], AsyncSession], request_id: str) -> None:
    async with sessionmaker() as db:
        await db.execute(delete(IdempotentRequest).where(IdempotentRequest.id == request_id))
        await db.commit()
