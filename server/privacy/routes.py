"""HTTP routes of the right of access: a patient's archive of their data, for themselves or
made by the install's administrator for them."""

from __future__ import annotations

from aiohttp import web

from server import audit, limits
from server.accounts.auth import require_user
from server.errors import NotFound
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.models import Role, User
from server.privacy import export

routes = web.RouteTableDef()


async def _send_archive(
    request: web.Request, subject_id: str, *, by_admin: bool
) -> web.StreamResponse:
    services = services_of(request)
    async with services.sessionmaker() as db:
        caller = await require_user(request, db, *((Role.ADMIN,) if by_admin else ()))
        subject = caller if not by_admin else await db.get(User, subject_id)
        if subject is None:
            raise NotFound("Compte introuvable.")
        await services.limiter.take(
            f"export:{caller.id}",
            limits.EXPORTS_PER_HOUR,
            limits.EXPORT_WINDOW,
            "Trop d'exports demandés. Réessayez dans une heure.",
        )
        archive = await export.gather(db, subject, services.clock.now())
        audit.record(
            db,
            services.clock,
            "data.exported",
            actor_id=caller.id,
            ip=client_ip(request),
            resource_type="user",
            resource_id=subject.id,
            details={"files": len(archive.files), "by_admin": by_admin},
        )
        await db.commit()
    day = services.clock.now().strftime("%Y-%m-%d")
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="mes-donnees-{day}.zip"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)

    async def send(data: bytes) -> None:
        if data:
            await response.write(data)

    await export.stream(archive, services.attachments, send)
    await response.write_eof()
    return response


@routes.get("/api/me/export")
@documented(
    "Everything held about me (RGPD art. 15/20): a ZIP of JSON files and my conversations' files"
)
async def my_export(request: web.Request) -> web.StreamResponse:
    return await _send_archive(request, "", by_admin=False)


@routes.get("/api/admin/users/{id}/export")
@documented("Administrator: a person's archive of their data, made for them (RGPD art. 15)")
async def admin_export(request: web.Request) -> web.StreamResponse:
    return await _send_archive(request, request.match_info["id"], by_admin=True)
