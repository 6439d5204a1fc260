"""HTTP routes of the forgotten password: ask for a link or a code, check a link, confirm."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from server import limits
from server.accounts import password_reset
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body
from server.values import MaybeEmail, MaybePhone, Password

routes = web.RouteTableDef()

HOUR = timedelta(hours=1)
ASKED = (
    "Si un compte correspond, un message vient de partir : un lien par e-mail, ou un code "
    "par SMS. Il est valable une heure. Pensez à regarder dans les courriers indésirables."
)
TOO_MANY_REQUESTS = "Trop de demandes depuis cette adresse. Réessayez dans une heure."
TOO_MANY_CONFIRMS = "Trop d'essais depuis cette adresse. Réessayez dans une heure."
ONE_OF = "Indiquez votre adresse e-mail ou votre numéro de téléphone portable."


class ResetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: MaybeEmail = None
    phone: MaybePhone = None

    @model_validator(mode="after")
    def one_of(self) -> ResetBody:
        if (self.email is None) == (self.phone is None):
            raise ValueError(ONE_OF)
        return self


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(default=None, min_length=20, max_length=100)
    phone: MaybePhone = None
    code: str | None = Field(default=None, pattern=r"^\s*\d{6}\s*$")
    password: Password

    @model_validator(mode="after")
    def token_or_code(self) -> ConfirmBody:
        if self.token is None and (self.phone is None or self.code is None):
            raise ValueError("Indiquez le lien reçu par e-mail, ou le téléphone et le code reçu.")
        return self


@routes.post("/api/auth/password-reset")
@documented(
    "Forgotten password: a link by email or a 6-digit code by SMS (202 whatever the address)",
    body=ResetBody,
    public=True,
)
async def ask(request: web.Request) -> web.Response:
    services = services_of(request)
    ip = client_ip(request)
    body = await parse_body(request, ResetBody)
    await services.limiter.take(
        f"reset:{ip}", limits.PASSWORD_RESETS_PER_ADDRESS_PER_HOUR, HOUR, TOO_MANY_REQUESTS
    )
    async with services.sessionmaker() as db:
        await password_reset.request_reset(db, services, email=body.email, phone=body.phone, ip=ip)
        await db.commit()
    services.bell.ring()
    return web.json_response({"detail": ASKED}, status=202)


@routes.get("/api/auth/password-reset/{token}")
@documented("Whether a reset link still works (204), or 410", public=True)
async def check(request: web.Request) -> web.Response:
    services = services_of(request)
    await services.limiter.take(
        f"reset-confirm:{client_ip(request)}",
        limits.PASSWORD_RESET_CONFIRMS_PER_ADDRESS_PER_HOUR,
        HOUR,
        TOO_MANY_CONFIRMS,
    )
    async with services.sessionmaker() as db:
        await password_reset.check_link(db, services, request.match_info["token"])
    return web.Response(status=204)


@routes.post("/api/auth/password-reset/confirm")
@documented(
    "Set the new password with the link's token or the SMS code; ends every session",
    body=ConfirmBody,
    public=True,
)
async def confirm(request: web.Request) -> web.Response:
    services = services_of(request)
    ip = client_ip(request)
    body = await parse_body(request, ConfirmBody)
    await services.limiter.take(
        f"reset-confirm:{ip}",
        limits.PASSWORD_RESET_CONFIRMS_PER_ADDRESS_PER_HOUR,
        HOUR,
        TOO_MANY_CONFIRMS,
    )
    async with services.sessionmaker() as db:
        user, ended = await password_reset.confirm_reset(
            db,
            services,
            token=body.token,
            phone=body.phone,
            code=body.code.strip() if body.code else None,
            password=body.password,
            ip=ip,
        )
        await db.commit()  # a wrong code's attempt counts even though it is refused
    if user is None:
        raise password_reset.wrong_code()
    await services.events.end_sessions(
        ended, "Le mot de passe du compte vient d'être changé. Reconnectez-vous."
    )
    return web.json_response(
        {"detail": "Votre mot de passe est changé. Connectez-vous avec le nouveau."}
    )
