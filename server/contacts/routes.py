"""HTTP routes for practitioner search and connection requests."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server import limits
from server.accounts.auth import require_user
from server.contacts import service
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import SearchQuery, parse_body, parse_query
from server.http.serialize import iso, person_json, practitioner_json
from server.models import Role

routes = web.RouteTableDef()


class ContactRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    practitioner_id: str = Field(min_length=1, max_length=64)
    message: str | None = Field(default=None, max_length=limits.CONTACT_REQUEST_MESSAGE_MAX_LENGTH)


def request_json(view: service.ContactRequestView) -> dict[str, Any]:
    r = view.request
    return {
        "id": r.id,
        "status": r.status,
        "message": r.message,
        "created_at": iso(r.created_at),
        "decided_at": iso(r.decided_at),
        "conversation_id": r.conversation_id,
        "patient": person_json(view.patient),
        "practitioner": person_json(view.practitioner),
    }


@routes.get("/api/practitioners")
@documented("Search doctors and nurses by name (?q=)", query=SearchQuery)
async def search(request: web.Request) -> web.Response:
    query = parse_query(request, SearchQuery)
    async with services_of(request).sessionmaker() as db:
        await require_user(request, db)
        found = await service.search_practitioners(db, query.q)
    return web.json_response({"items": [practitioner_json(v.user, v.practice) for v in found]})


@routes.post("/api/contact-requests")
@documented("Ask a practitioner to be followed (patients)", body=ContactRequestBody)
async def create(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        patient = await require_user(request, db, Role.PATIENT)
        body = await parse_body(request, ContactRequestBody)
        created = await service.create_request(
            db,
            services,
            patient,
            body.practitioner_id,
            (body.message or "").strip(),
            ip=client_ip(request),
        )
        await db.commit()
        views = await service.list_requests(db, patient)
    view = next(v for v in views if v.request.id == created.id)
    return web.json_response(request_json(view), status=201)


@routes.get("/api/contact-requests")
@documented("Incoming requests (practitioners) or sent requests (patients)")
async def list_(request: web.Request) -> web.Response:
    async with services_of(request).sessionmaker() as db:
        user = await require_user(request, db)
        views = await service.list_requests(db, user)
    return web.json_response({"items": [request_json(v) for v in views]})


async def _decide(request: web.Request, accept: bool) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        practitioner = await require_user(request, db, Role.DOCTOR, Role.NURSE)
        decide = service.accept_request if accept else service.decline_request
        decided = await decide(
            db, services, practitioner, request.match_info["id"], ip=client_ip(request)
        )
        await db.commit()
    return web.json_response(
        {"id": decided.id, "status": decided.status, "conversation_id": decided.conversation_id}
    )


@routes.post("/api/contact-requests/{id}/accept")
@documented("Accept a connection request; opens the conversation")
async def accept(request: web.Request) -> web.Response:
    return await _decide(request, accept=True)


@routes.post("/api/contact-requests/{id}/decline")
@documented("Decline a connection request")
async def decline(request: web.Request) -> web.Response:
    return await _decide(request, accept=False)
