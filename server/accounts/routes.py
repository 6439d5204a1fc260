"""HTTP routes for accounts: register, login, logout, me."""

from __future__ import annotations

from datetime import date
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server import limits
from server.accounts import service
from server.accounts.auth import require_user
from server.accounts.email_verification import ask_verification
from server.errors import Conflict, Forbidden
from server.http.auth import SESSION_COOKIE, clear_session_cookie, client_ip, set_session_cookie
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body
from server.http.serialize import iso, user_json
from server.models import Role
from server.tokens import token_hash
from server.values import Email, MaybePhone, Password, Rpps

routes = web.RouteTableDef()

TOO_MANY_SIGNUPS = (
    "Trop de tentatives de création de compte depuis cette adresse. Réessayez plus tard."
)


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    role: Literal["patient", "doctor", "nurse"] = "patient"
    rpps: Rpps | None = None
    specialty: str | None = Field(default=None, max_length=60)
    sector: Literal["1", "2", "optam"] | None = None
    phone: MaybePhone = None
    birth_date: date | None = None
    practice_name: str | None = Field(default=None, max_length=200)
    practice_address: str | None = Field(default=None, max_length=500)
    # The sign-up page asks for it; it is recorded with its time (RGPD art. 13 information).
    accept_privacy: bool = False


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254)
    password: str = Field(max_length=limits.PASSWORD_MAX_LENGTH)


@routes.post("/api/auth/register")
@documented(
    "Create an account (patients; doctors and nurses with their RPPS)",
    body=RegisterBody,
    public=True,
)
async def register(request: web.Request) -> web.Response:
    services = services_of(request)
    ip = client_ip(request)
    body = await parse_body(request, RegisterBody)
    if body.role == "patient" and (body.rpps or body.specialty or body.sector):
        raise Forbidden("Un compte patient ne porte ni RPPS, ni spécialité, ni secteur.")
    await services.limiter.take(
        f"register:{ip}",
        limits.REGISTRATIONS_PER_ADDRESS_PER_HOUR,
        limits.LOGIN_WINDOW * 4,
        "Trop de comptes créés depuis cette adresse. Réessayez plus tard.",
    )
    # Each sign-up that finds its address taken tells whether that address has an account:
    # an address gets a few such answers an hour, then none.
    async with (
        services.limiter.answers_that_tell(
            f"probe:taken:{ip}",
            limits.TAKEN_ADDRESS_PROBES_PER_HOUR,
            limits.PROBE_WINDOW,
            TOO_MANY_SIGNUPS,
            telling=(Conflict,),
        ),
        services.sessionmaker() as db,
    ):
        user = await service.create_user(
            db,
            services,
            service.NewUser(
                email=body.email,
                password=body.password,
                first_name=body.first_name.strip(),
                last_name=body.last_name.strip(),
                role=Role(body.role),
                rpps=body.rpps,
                specialty=body.specialty,
                sector=body.sector,
                phone=body.phone,
                birth_date=body.birth_date,
                practice_name=body.practice_name,
                practice_address=body.practice_address,
                # Anyone can type a Luhn-valid RPPS: a professional account is checked by the
                # install's administrator before it invites or is found by patients.
                approved=body.role == "patient",
                email_verified=False,
                privacy_accepted=body.accept_privacy,
            ),
            actor_id=None,
            ip=ip,
        )
        await ask_verification(db, services, user)
        token = await service.open_session(
            db, services, user, ip=ip, user_agent=request.headers.get("User-Agent")
        )
        await db.commit()
    services.bell.ring()
    response = web.json_response(user_json(user), status=201)
    set_session_cookie(request, response, token)
    return response


@routes.post("/api/auth/login")
@documented("Sign in; sets the tc_session cookie", body=LoginBody, public=True)
async def login(request: web.Request) -> web.Response:
    services = services_of(request)
    ip = client_ip(request)
    body = await parse_body(request, LoginBody)
    async with services.sessionmaker() as db:
        user = await service.authenticate(
            db, services, body.email.strip().lower(), body.password, ip=ip
        )
        token = await service.open_session(
            db, services, user, ip=ip, user_agent=request.headers.get("User-Agent")
        )
        await db.commit()
    response = web.json_response(user_json(user))
    set_session_cookie(request, response, token)
    return response


SIGNED_OUT = "Vous avez été déconnecté."
SIGNED_OUT_EVERYWHERE = "Vous avez été déconnecté de tous vos appareils."


@routes.post("/api/auth/logout")
@documented("Sign out (ends the session and closes its sockets)", public=True)
async def logout(request: web.Request) -> web.Response:
    services = services_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    async with services.sessionmaker() as db:
        user = await require_user(request, db, allow_pending=True)
        assert token is not None
        ended = await service.close_session(
            db, services, token, user_id=user.id, ip=client_ip(request)
        )
        await db.commit()
    await services.events.end_sessions(ended, SIGNED_OUT)
    response = web.Response(status=204)
    clear_session_cookie(response)
    return response


@routes.post("/api/auth/logout-all")
@documented("Sign out everywhere: ends every session of the account and closes their sockets")
async def logout_all(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db, allow_pending=True)
        ended = await service.close_all_sessions(
            db, services, user.id, actor_id=user.id, ip=client_ip(request), why="logout_all"
        )
        await db.commit()
    await services.events.end_sessions(ended, SIGNED_OUT_EVERYWHERE)
    response = web.Response(status=204)
    clear_session_cookie(response)
    return response


@routes.get("/api/auth/sessions")
@documented("The account's open sessions (device, address, dates), the current one marked")
async def list_sessions(request: web.Request) -> web.Response:
    services = services_of(request)
    token = request.cookies.get(SESSION_COOKIE) or ""
    async with services.sessionmaker() as db:
        user = await require_user(request, db, allow_pending=True)
        sessions = await service.sessions_of(db, services, user.id)
    current = token_hash(token)
    return web.json_response(
        {
            "items": [
                {
                    "id": s.id,
                    "created_at": iso(s.created_at),
                    "last_active_until": iso(s.idle_expires_at),
                    "expires_at": iso(s.expires_at),
                    "ip": s.ip,
                    "user_agent": s.user_agent,
                    "current": s.token_hash == current,
                }
                for s in sessions
            ]
        }
    )


@routes.get("/api/me")
@documented("The signed-in user")
async def me(request: web.Request) -> web.Response:
    async with services_of(request).sessionmaker() as db:
        user = await require_user(request, db, allow_pending=True)
    return web.json_response(user_json(user))
