"""One JSON log line per request: method, route, status, duration.

The route template (``/i/{token}``) is logged, not the path, so invitation tokens never reach the
logs; query strings, bodies and cookies are never logged.
"""

from __future__ import annotations

import json
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from server.http.auth import client_ip

log = logging.getLogger("teleconsult.access")


def _route_of(request: web.Request) -> str:
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is not None and resource.canonical:
        return str(resource.canonical)
    return "(unmatched)"


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects are raised, and are not errors
        status = exc.status
        raise
    finally:
        log.info(
            json.dumps(
                {
                    "method": request.method,
                    "route": _route_of(request),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "ip": client_ip(request),
                }
            )
        )
