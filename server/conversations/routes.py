"""HTTP routes for conversations (listing and opening; messages come with issue 3)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.conversations import service
from server.http.auth import client_ip, require_user
from server.http.docs import documented
from server.http.keys import services_of
from server.http.serialize import iso, person_json

routes = web.RouteTableDef()


def conversation_json(view: service.ConversationView) -> dict[str, Any]:
    c = view.conversation
    return {
        "id": c.id,
        "patient": person_json(view.patient),
        "practitioner": person_json(view.practitioner),
        "participants": [person_json(view.practitioner), person_json(view.patient)],
        "origin": c.origin,
        "patient_can_write": c.patient_can_write,
        "created_at": iso(c.created_at),
    }


@routes.get("/api/conversations")
@documented("The caller's conversations; ?q= searches by name")
async def list_(request: web.Request) -> web.Response:
    async with services_of(request).sessionmaker() as db:
        user = await require_user(request, db)
        views = await service.list_conversations(db, user, request.query.get("q") or None)
    return web.json_response({"items": [conversation_json(v) for v in views]})


@routes.get("/api/conversations/{id}")
@documented("One conversation (members only; the access is audited)")
async def show(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        view = await service.access_conversation(
            db, services, user, request.match_info["id"], ip=client_ip(request)
        )
        await db.commit()
    return web.json_response(conversation_json(view))
