"""HTTP routes of email confirmation: follow the link, or ask for another one."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.accounts import email_verification
from server.accounts.auth import require_user
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body
from server.http.serialize import user_json

routes = web.RouteTableDef()


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=20, max_length=100)


@routes.post("/api/auth/verify-email")
@documented("Confirm my email address with the link's token", body=TokenBody, public=True)
async def confirm(request: web.Request) -> web.Response:
    services = services_of(request)
    body = await parse_body(request, TokenBody)
    async with services.sessionmaker() as db:
        user = await email_verification.confirm_email(
            db, services, body.token, ip=client_ip(request)
        )
        await db.commit()
        return web.json_response(user_json(user))


@routes.post("/api/me/verify-email")
@documented("Send me the email confirmation link again")
async def resend(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db, allow_pending=True)
        if user.email_verified_at is None:
            await email_verification.ask_verification(db, services, user)
            await db.commit()
            services.bell.ring()
    return web.json_response(
        {"detail": f"Un e-mail de confirmation vient de partir vers {user.email}."}, status=202
    )
