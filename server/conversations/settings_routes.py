"""HTTP routes for a practitioner's messaging settings (``/api/me/messaging``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from server import limits
from server.accounts.auth import require_user
from server.conversations import settings as messaging_settings
from server.events import conversation_room
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body
from server.http.serialize import iso

routes = web.RouteTableDef()


class AwayBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: AwareDatetime | None = Field(default=None, alias="from")
    until: AwareDatetime | None = None
    message: str | None = Field(default=None, max_length=limits.AWAY_MESSAGE_MAX_LENGTH)
    exceptions: list[str] = Field(default_factory=list, max_length=500)


class MessagingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    open: bool
    away: AwayBody | None = None


def _json(state: messaging_settings.MessagingState, now: datetime) -> dict[str, Any]:
    away = state.away
    return {
        "open": state.open,
        "away": {
            "from": iso(away.start),
            "until": iso(away.until),
            "message": away.message,
            "exceptions": list(away.exceptions),
            "active": (away.start is None or away.start <= now)
            and (away.until is None or now < away.until),
        }
        if away
        else None,
    }


@routes.get("/api/me/messaging")
@documented("Practitioner: current messaging settings")
async def get_settings(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        state = await messaging_settings.get_settings(db, user)
    return web.json_response(_json(state, services.clock.now()))


@routes.put("/api/me/messaging")
@documented(
    "Practitioner: open messaging to followed patients, and away mode with exceptions",
    body=MessagingBody,
)
async def put_settings(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        body = await parse_body(request, MessagingBody)
        away = None
        if body.away is not None:
            away = messaging_settings.AwaySettings(
                body.away.start,
                body.away.until,
                (body.away.message or "").strip() or None,
                tuple(body.away.exceptions),
            )
        state, conversation_ids = await messaging_settings.put_settings(
            db,
            services,
            user,
            messaging_settings.MessagingState(body.open, away),
            ip=client_ip(request),
        )
    for conversation_id in conversation_ids:
        await services.events.publish(
            "conversation:state",
            {"conversation_id": conversation_id},
            room=conversation_room(conversation_id),
        )
    return web.json_response(_json(state, services.clock.now()))
