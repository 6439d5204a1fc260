"""The browser pages (plain HTML and ES modules from ``web/``), and the health check."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import text

from server.accounts.auth import optional_user
from server.calls.service import call_has_ended
from server.http.docs import build_openapi
from server.http.headers import content_security_policy, inline_scripts
from server.http.keys import services_of
from server.models import Role

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

routes = web.RouteTableDef()


def _page(name: str, csp: str | None = None) -> web.FileResponse:
    headers = {"Cache-Control": "no-store"}
    if csp is not None:
        headers["Content-Security-Policy"] = csp
    return web.FileResponse(WEB_DIR / name, headers=headers)


# The call page starts its camera and first requests from an inline script (no file to wait
# for): that script, and only it, may run.
_CALL_PAGE_CSP = content_security_policy(inline_scripts((WEB_DIR / "call.html").read_text()))
_ENDED_CALL_PAGE = (
    (WEB_DIR / "call.html")
    .read_text()
    .replace('<html lang="fr">', '<html lang="fr" data-ended="">', 1)
)


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    async with services_of(request).sessionmaker() as db:
        user = await optional_user(request, db)
    if user is None:
        raise web.HTTPFound("/login")
    raise web.HTTPFound("/patient" if user.role == Role.PATIENT else "/pro")


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    return _page("login.html")


@routes.get("/register")
async def register_page(request: web.Request) -> web.StreamResponse:
    return _page("register.html")


@routes.get("/forgot")
async def forgot_page(request: web.Request) -> web.StreamResponse:
    return _page("forgot.html")


@routes.get("/reset/{token}")
async def reset_page(request: web.Request) -> web.StreamResponse:
    return _page("reset.html")


@routes.get("/verify/{token}")
async def verify_page(request: web.Request) -> web.StreamResponse:
    return _page("verify.html")


@routes.get("/settings")
async def settings_page(request: web.Request) -> web.StreamResponse:
    return _page("settings.html")


@routes.get("/profile")
async def profile_page(request: web.Request) -> web.StreamResponse:
    """A professional's practice details: billing profile, payment details, monthly export."""
    return _page("profile.html")


@routes.get("/expertise")
async def expertise_page(request: web.Request) -> web.StreamResponse:
    """Tele-expertise for professionals: the line's inbox, my requests, asking, my lines."""
    return _page("expertise.html")


@routes.get("/confidentialite")
async def privacy_page(request: web.Request) -> web.StreamResponse:
    """The privacy notice (RGPD art. 13) shown before an account is made; public."""
    return _page("privacy.html")


@routes.get("/sw.js")
async def service_worker(request: web.Request) -> web.StreamResponse:
    """At the root, so that its scope is the whole site; never cached, so an update reaches
    browsers at their next visit."""
    return web.FileResponse(
        WEB_DIR / "static" / "sw.js",
        headers={"Content-Type": "text/javascript", "Cache-Control": "no-cache"},
    )


@routes.get("/manifest.webmanifest")
async def manifest(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        WEB_DIR / "static" / "manifest.webmanifest",
        headers={"Content-Type": "application/manifest+json", "Cache-Control": "no-cache"},
    )


@routes.get("/i/{token}")
async def invitation_page(request: web.Request) -> web.StreamResponse:
    return _page("invitation.html")


@routes.get("/pro")
async def pro_page(request: web.Request) -> web.StreamResponse:
    return _page("pro.html")


@routes.get("/patient")
async def patient_page(request: web.Request) -> web.StreamResponse:
    return _page("patient.html")


@routes.get("/c/{call_id}")
async def call_page(request: web.Request) -> web.StreamResponse:
    # Signed out: straight to the sign-in page. The page itself may then open the camera and the
    # socket at once, without first asking who is there (the patient waits less before joining).
    async with services_of(request).sessionmaker() as db:
        user = await optional_user(request, db)
        ended = user is not None and await call_has_ended(db, user, request.match_info["call_id"])
    if user is None:
        raise web.HTTPFound(f"/login?next={quote(request.path)}")
    if ended:
        # Said on the page itself, so that its first script opens no camera for a call that is
        # over (the after-call panel and the record only).
        return web.Response(
            text=_ENDED_CALL_PAGE,
            content_type="text/html",
            headers={"Cache-Control": "no-store", "Content-Security-Policy": _CALL_PAGE_CSP},
        )
    return _page("call.html", _CALL_PAGE_CSP)


@routes.get("/p/{request_id}")
async def payment_page(request: web.Request) -> web.StreamResponse:
    return _page("pay.html")


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    async with services_of(request).sessionmaker() as db:
        await db.execute(text("SELECT 1"))
    return web.json_response({"status": "ok"})


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_openapi(request.app))
