"""Refused accesses in the audit log (issue 24): a 403, or a 404 answered to someone asking for
another person's resource, says nothing to the caller, but the install keeps who asked, for
what and from where — an outsider probing ids shows up in the log."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from server import audit
from server.accounts.auth import optional_user
from server.errors import Forbidden, NotFound
from server.http.auth import client_ip
from server.http.keys import services_of

log = logging.getLogger("teleconsult.audit")


async def _record(request: web.Request, status: int) -> None:
    services = services_of(request)
    route = request.match_info.route.resource
    async with services.sessionmaker() as db:
        user = await optional_user(request, db)
        audit.record(
            db,
            services.clock,
            "access.refused",
            actor_id=user.id if user else None,
            ip=client_ip(request),
            resource_type=route.canonical if route else None,
            resource_id=request.match_info.get("id"),
            details={"method": request.method, "status": status},
        )
        await db.commit()


@web.middleware
async def refused_access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (Forbidden, NotFound) as exc:
        if request.path.startswith("/api/"):
            try:
                await _record(request, exc.status)
            except Exception:  # the refusal is answered even if it cannot be recorded
                log.exception("could not record a refused access")
        raise
