"""HTTP routes for calls."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.accounts.auth import require_user
from server.calls import quality, service
from server.calls.keys import SFU_CALLS
from server.calls.turn import ice_servers
from server.conversations import announce, model, posting
from server.errors import Forbidden
from server.events import call_room, user_room
from server.http.auth import client_ip
from server.http.docs import documented
from server.http.keys import services_of
from server.http.parsing import parse_body
from server.http.serialize import iso, person_json
from server.models import Role, User
from server.notify import queue
from server.services import Services

routes = web.RouteTableDef()


class CallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["p2p", "sfu"] = "p2p"


class NurseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nurse_id: str = Field(min_length=1, max_length=64)
    # In the room with the patient (one device), or joining from elsewhere.
    assistance: Literal["in_room", "remote"] = "remote"
    # Where the nurse accompanies it, which decides the nurse's code (TLS, TLL, TLD).
    place: Literal["planned_visit", "dedicated_place", "home"] | None = None


def join_url(services: Services, call_id: str) -> str:
    return f"{services.public_url}/c/{call_id}"


def participants_json(
    view: service.CallView, events: list[Any] | None, viewer: User | None
) -> list[dict[str, Any]]:
    """One entry per person, however many connections they went through (``peer_id``: their
    latest). Their device check and connection quality go to professionals; a patient sees
    only their own."""
    people: dict[str, dict[str, Any]] = {}
    latest: dict[str, str] = {}
    for p, u in view.peers:  # in joining order: the last one is the person's current connection
        entry = people.setdefault(
            u.id,
            {"user": person_json(u), "role": u.role, "joined_at": iso(p.joined_at)},
        )
        entry |= {
            "peer_id": p.id,
            "ready_at": iso(p.ready_at),
            "left_at": iso(p.left_at),
            "present": p.left_at is None,
        }
        latest[u.id] = p.id
    if events is not None and viewer is not None:
        peers_of = {p.id: u.id for p, u in view.peers}
        for user_id, entry in people.items():
            if viewer.role == Role.PATIENT and user_id != viewer.id:
                continue
            mine = [e for e in events if peers_of.get(e.peer_id or "") == user_id]
            entry["check"] = quality.latest_check(mine)
            entry["quality"] = quality.quality(mine)
    return list(people.values())


def call_json(
    services: Services,
    view: service.CallView,
    events: list[Any] | None = None,
    viewer: User | None = None,
) -> dict[str, Any]:
    call = view.call
    body: dict[str, Any] = {
        "id": call.id,
        "conversation_id": call.conversation_id,
        "mode": call.mode,
        "status": call.status,
        "join_url": join_url(services, call.id),
        "created_at": iso(call.created_at),
        "ended_at": iso(call.ended_at),
        "nurse_id": call.nurse_id,
        "assistance": call.assistance,
        "assistance_place": call.assistance_place,
        "participants": participants_json(view, events, viewer),
    }
    if events is not None:
        body["timeline"] = [
            {
                "at": iso(e.at),
                "kind": e.kind,
                "user_id": e.user_id,
                "peer_id": e.peer_id,
                # SFU calls: what the server forwarded of a participant who left.
                **({"data": e.data} if e.kind == "forwarded" else {}),
            }
            for e in events
            if e.kind != "stats"
        ]
    return body


@routes.post("/api/conversations/{id}/calls")
@documented(
    "Professional: start a video call (rings the members; posts the join link)", body=CallBody
)
async def start(request: web.Request) -> web.Response:
    services = services_of(request)
    ip = client_ip(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        body = await parse_body(request, CallBody)
        call, conversation = await service.start_call(
            db, services, user, request.match_info["id"], body.mode, ip=ip
        )
        # The link in the conversation reaches members who are not online now; the call and
        # its link are written together (a failure between left a call with no link).
        posted = await posting.post_message(
            db,
            services,
            user,
            call.conversation_id,
            model.NewMessage(
                client_id=f"call:{call.id}",
                body="📹 Téléconsultation vidéo : rejoignez l'appel ici "
                f"{join_url(services, call.id)}",
            ),
            ip=ip,
        )
        if posted.created:  # a new call, not a second click joining the one under way
            await queue.call_started(db, services.clock.now(), call.id, conversation.conversation)
        await db.commit()
        services.bell.ring()
        message, told = await announce.prepare(db, posted)
        members = await service.member_ids(db, conversation.conversation)
        view = await service.call_view(db, call, conversation.conversation)
    # The one way a posted message is announced: the thread gets it, list pages their activity.
    await announce.announce(services, posted, message, told)
    ring = {
        "call_id": call.id,
        "conversation_id": call.conversation_id,
        "from": person_json(user),
        "join_url": join_url(services, call.id),
    }
    for member_id in members - {user.id}:
        await services.events.publish("call:ring", ring, room=user_room(member_id))
    return web.json_response(call_json(services, view), status=201)


@routes.get("/api/calls")
@documented("Today's calls the caller may join (their conversations', or as invited nurse)")
async def list_today(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        calls = await service.calls_of_the_day(db, user, services.clock.now())
        items = []
        for call in calls:
            _, conversation = await service.access_call(db, user, call.id)
            view = await service.call_view(db, call, conversation.conversation)
            body = call_json(services, view)
            body["patient"] = person_json(conversation.patient)
            body["practitioner"] = person_json(conversation.practitioner)
            items.append(body)
    return web.json_response({"items": items})


@routes.get("/api/calls/{id}")
@documented("A call: status, participants with join/leave times, timeline")
async def show(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        call, conversation = await service.access_call(db, user, request.match_info["id"])
        view = await service.call_view(db, call, conversation.conversation)
        events = await service.timeline(db, call.id)
        body = call_json(services, view, events, user)
        proof, _ = await service.video_proof(db, call, conversation.conversation)
        body["video_both_ways_seconds"] = proof.seconds
        body["conversation"] = {
            "id": conversation.conversation.id,
            "patient": person_json(conversation.patient),
            "practitioner": person_json(conversation.practitioner),
        }
    return web.json_response(body)


@routes.post("/api/calls/{id}/end")
@documented("End the call for everyone")
async def end(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        call, conversation = await service.access_call(db, user, request.match_info["id"])
        if not user.role_enum.is_professional:
            raise Forbidden(
                "Seul un professionnel peut terminer l'appel pour tous ; vous pouvez le quitter."
            )
        await service.end_call(db, services, call, user_id=user.id, ip=client_ip(request))
        view = await service.call_view(db, call, conversation.conversation)
    await services.events.publish("call:ended", {"call_id": call.id}, room=call_room(call.id))
    return web.json_response(call_json(services, view))


@routes.post("/api/calls/{id}/invite-nurse")
@documented("Add a nurse to the call (assisted teleconsultation)", body=NurseBody)
async def invite_nurse(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        body = await parse_body(request, NurseBody)
        call = await service.invite_nurse(
            db,
            services,
            user,
            request.match_info["id"],
            body.nurse_id,
            body.assistance,
            place=body.place,
            ip=client_ip(request),
        )
        _, conversation = await service.access_call(db, user, call.id)
        view = await service.call_view(db, call, conversation.conversation)
    services.bell.ring()
    await services.events.publish(
        "call:ring",
        {
            "call_id": call.id,
            "conversation_id": call.conversation_id,
            "from": person_json(user),
            "join_url": join_url(services, call.id),
        },
        room=user_room(body.nurse_id),
    )
    return web.json_response(call_json(services, view))


@routes.get("/api/calls/{id}/forwarding")
@documented("SFU calls: per published track, frames and bytes received and forwarded to each")
async def forwarding(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        call, _ = await service.access_call(db, user, request.match_info["id"])
    tracks = await request.app[SFU_CALLS].stats(call.id)
    return web.json_response({"call_id": call.id, "mode": call.mode, "tracks": tracks})


@routes.get("/api/calls/{id}/ice-servers")
@documented("ICE servers for this call, with time-limited TURN credentials")
async def ice(request: web.Request) -> web.Response:
    services = services_of(request)
    async with services.sessionmaker() as db:
        user = await require_user(request, db)
        await service.access_call(db, user, request.match_info["id"])
    settings = services.settings
    return web.json_response(
        {
            "iceServers": ice_servers(
                settings.turn_urls, settings.turn_secret, user.id, services.clock.now()
            )
        }
    )
