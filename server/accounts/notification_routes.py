"""HTTP routes of notifications: a person's channels and quiet hours, their browsers' push
subscriptions, and a test notice."""

from __future__ import annotations

import re
from datetime import timedelta
from fnmatch import fnmatch
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit, limits
from server.accounts.auth import require_user
from server.errors import InvalidInput
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body
from server.models import NoticeKind, PushSubscription, User, new_id
from server.notify.preferences import Preferences, preferences_of, save_preferences
from server.notify.queue import add_notice
from server.outbound.push import load_key, public_key_b64
from server.services import Services
from server.settings import Settings
from server.values import MaybePhone

routes = web.RouteTableDef()

_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _clock_time(value: str) -> str:
    if not _CLOCK.fullmatch(value):
        raise ValueError("une heure au format HH:MM, par exemple 22:00")
    return value


ClockTime = Annotated[str, StringConstraints(max_length=5), AfterValidator(_clock_time)]


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: ClockTime = Field(alias="from")
    until: ClockTime


class PreferencesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: bool = True
    sms: bool = True
    push: bool = True
    quiet_hours: QuietHours | None = None
    # Changing the mobile number (where SMS codes go) asks for the password: a session left
    # open on a shared computer must not hand the account over.
    phone: MaybePhone | Literal[""] = ""
    current_password: str | None = Field(default=None, max_length=limits.PASSWORD_MAX_LENGTH)

    @model_validator(mode="after")
    def distinct_hours(self) -> PreferencesBody:
        if self.quiet_hours and self.quiet_hours.from_ == self.quiet_hours.until:
            raise ValueError(
                "Les heures calmes doivent commencer et finir à des heures différentes."
            )
        return self


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="ignore")

    p256dh: str = Field(min_length=80, max_length=200, pattern=r"^[A-Za-z0-9_\-=]+$")
    auth: str = Field(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_\-=]+$")


class SubscriptionBody(BaseModel):
    """A browser's ``PushSubscription.toJSON()``."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(max_length=1000)
    keys: SubscriptionKeys

    @field_validator("endpoint")
    @classmethod
    def a_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"https", "http"} or not parts.netloc:
            raise ValueError("l'adresse du service de notifications n'est pas valable")
        return value


class EndpointBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(max_length=1000)


def _allowed(settings: Settings, endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    origin = f"{parts.scheme}://{parts.netloc}"
    return any(fnmatch(origin, pattern) for pattern in settings.push_services)


def _preferences_json(prefs: Preferences, phone: str | None, devices: int) -> dict[str, Any]:
    quiet = (
        {"from": prefs.quiet_from, "until": prefs.quiet_until}
        if prefs.quiet_from and prefs.quiet_until
        else None
    )
    return {
        "email": prefs.email,
        "sms": prefs.sms,
        "push": prefs.push,
        "quiet_hours": quiet,
        "phone": phone,
        "push_devices": devices,
    }


async def _devices(db: Any, user_id: str) -> int:
    count = await db.scalar(
        select(func.count(PushSubscription.id)).where(PushSubscription.user_id == user_id)
    )
    return int(count or 0)


@routes.get("/api/me/notifications")
@documented("My notification channels and quiet hours")
async def get_preferences(request: web.Request) -> web.Response:
    async with services_of(request).sessionmaker() as db:
        user = await require_user(request, db, allow_pending=True)
        prefs = await preferences_of(db, user.id)
        devices = await _devices(db, user.id)
    return web.json_response(_preferences_json(prefs, user.phone, devices))


@routes.put("/api/me/notifications")
@documented("Choose my notification channels and quiet hours", body=PreferencesBody)
async def put_preferences(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db, allow_pending=True)
        body = await parse_body(request, PreferencesBody)
        if body.phone != "" and body.phone != user.phone:
            await _change_phone(
                services, user, body.phone, body.current_password, client_ip(request), db
            )
        prefs = Preferences(
            email=body.email,
            sms=body.sms,
            push=body.push,
            quiet_from=body.quiet_hours.from_ if body.quiet_hours else None,
            quiet_until=body.quiet_hours.until if body.quiet_hours else None,
        )
        await save_preferences(db, services.clock.now(), user.id, prefs)
        await db.commit()
        devices = await _devices(db, user.id)
    return web.json_response(_preferences_json(prefs, user.phone, devices))


WRONG_PASSWORD = "Mot de passe incorrect : le numéro n'a pas été changé."


async def _change_phone(
    services: Services,
    user: User,
    phone: str | None,
    password: str | None,
    ip: str | None,
    db: AsyncSession,
) -> None:
    if not password or not await services.passwords.verify(user.password_hash, password):
        raise InvalidInput(
            WRONG_PASSWORD,
            extra={"errors": [{"field": "current_password", "detail": WRONG_PASSWORD}]},
        )
    audit.record(
        db,
        services.clock,
        "account.phone_changed",
        actor_id=user.id,
        ip=ip,
        resource_type="user",
        resource_id=user.id,
    )
    user.phone = phone


@routes.get("/api/push/key")
@documented("This server's VAPID public key, for pushManager.subscribe", public=True)
async def push_key(request: web.Request) -> web.Response:
    settings = services_of(request).settings
    return web.json_response({"public_key": public_key_b64(load_key(settings.vapid_private_key))})


@routes.post("/api/push/subscriptions")
@documented("Receive notifications on this browser (a PushSubscription)", body=SubscriptionBody)
async def subscribe(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db, allow_pending=True)
        body = await parse_body(request, SubscriptionBody)
        if not _allowed(services.settings, body.endpoint):
            raise InvalidInput(
                "Ce navigateur utilise un service de notifications que ce serveur ne connaît pas.",
                extra={"errors": [{"field": "endpoint", "detail": "service inconnu"}]},
            )
        now = services.clock.now()
        row = await db.scalar(
            select(PushSubscription).where(PushSubscription.endpoint == body.endpoint)
        )
        if row is None:
            row = PushSubscription(id=new_id(), endpoint=body.endpoint, created_at=now)
            db.add(row)
        # One browser, one person: a shared computer's subscription follows who signed in.
        row.user_id = user.id
        row.p256dh = body.keys.p256dh
        row.auth = body.keys.auth
        row.user_agent = (request.headers.get("User-Agent") or "")[:300] or None
        await db.flush()
        keep = select(PushSubscription.id).where(PushSubscription.user_id == user.id)
        oldest_kept = list(
            await db.scalars(
                keep.order_by(PushSubscription.created_at.desc()).limit(
                    limits.PUSH_SUBSCRIPTIONS_PER_USER
                )
            )
        )
        await db.execute(
            delete(PushSubscription).where(
                PushSubscription.user_id == user.id, PushSubscription.id.not_in(oldest_kept)
            )
        )
        await db.commit()
    return web.json_response({"id": row.id}, status=201)


@routes.delete("/api/push/subscriptions")
@documented("Stop notifications on this browser", body=EndpointBody)
async def unsubscribe(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db, allow_pending=True)
        body = await parse_body(request, EndpointBody)
        await db.execute(
            delete(PushSubscription).where(
                PushSubscription.user_id == user.id, PushSubscription.endpoint == body.endpoint
            )
        )
        await db.commit()
    return web.Response(status=204)


@routes.post("/api/me/notifications/test")
@documented("Send myself a test notification on every channel I chose")
async def test(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db, allow_pending=True)
        await services.limiter.take(
            f"notify-test:{user.id}",
            limits.TEST_NOTICES_PER_HOUR,
            timedelta(hours=1),
            "Vous avez fait plusieurs essais en une heure : attendez un peu avant le suivant.",
        )
        notice_id = new_id()
        add_notice(
            db,
            services.clock.now(),
            user_id=user.id,
            kind=NoticeKind.TEST,
            subject_id=notice_id,
            dedupe_key=f"test:{notice_id}",
        )
        await db.commit()
    services.bell.ring()
    return web.json_response(
        {"detail": "Essai envoyé : il arrive dans quelques secondes."}, status=202
    )
