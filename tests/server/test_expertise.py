"""Tele-expertise over HTTP (issue 21): a line, a request with the patient's consent, the
questionnaire and a photo, the doctor of the day told by email (a real SMTP sink), a question
back, an answer with a template, the report PDF, closing; a rejection; a late request reminds the
line then the requester; outsiders get 404."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pypdf
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from server.clock import PARIS, FakeClock
from server.expertise import reminders
from server.http.keys import SERVICES
from server.models import Notice, NoticeKind
from server.notify.loop import notify_once
from tests.helpers import Client, valid_rpps
from tests.mail import SmtpServer

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PHOTO = b"\xff\xd8\xff\xe0" + b"\x00" * 2000  # a JPEG's magic bytes


async def pro(
    server: TestServer, client_of: Callable[[TestServer], Client], n: int, first: str, last: str
) -> Client:
    client = client_of(server)
    await client.register(
        email=f"{first.lower()}.{last.lower()}@example.fr",
        first_name=first,
        last_name=last,
        role="doctor",
        rpps=valid_rpps(100 + n),
    )
    return client


async def upload(client: Client, content: bytes, name: str) -> str:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=name)
    reply = await client.request("POST", "/api/uploads", data=form)
    assert reply.status == 201, reply
    return str(reply.body["id"])


LINE = {
    "name": "Hématologie — avis aux médecins du territoire",
    "specialty": "hematology",
    "description": "Anomalies de l'hémogramme, adénopathies.",
    "instructions": "Joignez le dernier hémogramme complet.",
    "accepts": ["anomalie de l'hémogramme"],
    "excludes": ["urgence vitale : appelez le 15"],
    "perimeter": {"postcodes": ["35"]},
    "questionnaire": [
        {
            "key": "followed",
            "label": "Le patient est-il déjà suivi ?",
            "type": "yes_no",
            "required": True,
        },
        {
            "key": "last_cbc",
            "label": "Date du dernier hémogramme",
            "type": "text",
            "required": False,
        },
    ],
    "delay_hours": 48,
}


def request_body(line_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "patient": {"first_name": "Marcel", "last_name": "Dupuis", "birth_date": "1948-03-02"},
        "consent": True,
        "answers": {"followed": False, "last_cbc": "01/12/2026"},
        "question": "Thrombopénie à 85 G/L isolée, que faire ?",
        "mode": "async",
        **changes,
    }


async def test_the_whole_flow_of_a_request(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    clock: FakeClock,
) -> None:
    server = await start_server(smtp_url=smtp.url)
    services = server.app[SERVICES]
    manager = await pro(server, client_of, 1, "Hélène", "Manager")
    on_call = await pro(server, client_of, 2, "Bruno", "Garde")
    gp = await pro(server, client_of, 3, "Gaston", "Generaliste")
    assert manager.user and on_call.user and gp.user

    created = await manager.post("/api/expertise/lines", {**LINE, "members": [on_call.user["id"]]})
    assert created.status == 201, created
    line = created.body
    assert line["is_manager"] and {m["id"] for m in line["members"]} == {
        manager.user["id"],
        on_call.user["id"],
    }
    today = WEEKDAYS[clock.now().astimezone(PARIS).weekday()]
    rota = await manager.put(
        f"/api/expertise/lines/{line['id']}/rota", {"weekdays": {today: on_call.user["id"]}}
    )
    assert rota.status == 200 and rota.body["weekdays"][today] == on_call.user["id"]
    found = await gp.get("/api/expertise/lines?q=hemato")
    assert [item["name"] for item in found.body["items"]] == [LINE["name"]]
    assert "rota" not in found.body["items"][0]  # the rota is the team's business

    # The requester's practice must be in the perimeter (its postcode, from "Mon cabinet").
    outside = await gp.post("/api/expertise/requests", request_body(line["id"]))
    assert outside.status == 403 and "code postal" in outside.body["detail"]
    await gp.put("/api/me/billing-profile", {"practice_postcode": "35000"})

    no_consent = await gp.post("/api/expertise/requests", request_body(line["id"], consent=False))
    assert no_consent.status == 422
    assert any(e["field"] == "consent" for e in no_consent.body["errors"])
    missing = await gp.post("/api/expertise/requests", request_body(line["id"], answers={}))
    assert missing.status == 422 and "Le patient est-il déjà suivi" in missing.body["detail"]

    photo = await upload(gp, PHOTO, "plaquettes.jpg")
    smtp.inbox.messages.clear()
    asked = await gp.post(
        "/api/expertise/requests",
        request_body(line["id"], attachment_ids=[photo], client_id="req-1"),
    )
    assert asked.status == 201, asked
    req = asked.body
    assert req["status"] == "open" and req["line"]["id"] == line["id"]
    assert req["due_at"] > req["created_at"] and not req["late"]
    again = await gp.post(
        "/api/expertise/requests",
        request_body(line["id"], attachment_ids=[photo], client_id="req-1"),
    )
    assert again.status == 200 and again.body["id"] == req["id"]

    # The doctor of the day is told by email, without anything about the patient.
    await notify_once(services)
    told = [m for m in smtp.inbox.messages if m["Subject"] == "Nouvelle demande de téléexpertise"]
    assert [m["To"] for m in told] == [on_call.user["email"]]
    to_on_call = told
    text = to_on_call[0].get_body(("plain",)).get_content()
    assert "Dupuis" not in text and "Thrombopénie" not in text and "téléexpertise" in text

    # Both sides see it; the thread holds the question, the answers and the photo.
    received = await on_call.get("/api/expertise/requests?box=received")
    assert [r["id"] for r in received.body["items"]] == [req["id"]]
    assert [r["id"] for r in (await gp.get("/api/expertise/requests?box=sent")).body["items"]] == [
        req["id"]
    ]
    cid = req["conversation_id"]
    thread = (await on_call.get(f"/api/conversations/{cid}/messages")).body["items"]
    assert (
        "Thrombopénie" in thread[0]["body"]
        and "Le patient est-il déjà suivi ? : non" in thread[0]["body"]
    )
    assert [a["filename"] for a in thread[0]["attachments"]] == ["plaquettes.jpg"]
    # The exchange does not crowd the GP's list of patient conversations.
    assert (await gp.get("/api/conversations")).body["items"] == []

    # A question back, answered.
    back = await on_call.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "q1", "body": "Pétéchies ? Traitement anticoagulant ?"},
    )
    assert back.status == 201
    reply = await gp.post(
        f"/api/conversations/{cid}/messages", {"client_id": "r1", "body": "Non et non."}
    )
    assert reply.status == 201

    # A team template, inserted into the answer.
    template = await manager.post(
        "/api/expertise/templates",
        {
            "title": "Thrombopénie isolée",
            "body": "Contrôle sur tube citraté.",
            "scope": "line",
            "line_id": line["id"],
        },
    )
    assert template.status == 201
    seen = (await on_call.get("/api/expertise/templates")).body["items"]
    assert [t["title"] for t in seen] == ["Thrombopénie isolée"]
    assert (await gp.get("/api/expertise/templates")).body["items"] == []

    claimed = await on_call.post(f"/api/expertise/requests/{req['id']}/claim")
    assert claimed.status == 200 and claimed.body["claimed_by"]["id"] == on_call.user["id"]
    twice = await manager.post(f"/api/expertise/requests/{req['id']}/claim")
    assert twice.status == 409
    answered = await on_call.post(
        f"/api/expertise/requests/{req['id']}/answer",
        {"body": seen[0]["body"] + " Pas d'urgence ; à revoir sous 15 jours."},
    )
    assert answered.status == 200, answered
    assert answered.body["status"] == "answered" and answered.body["report_document_id"]
    thread = (await gp.get(f"/api/conversations/{cid}/messages")).body["items"]
    report = thread[-1]
    assert report["body"] == "📄 Compte rendu de téléexpertise"
    async with gp.session.get(gp.server.make_url(report["attachments"][0]["url"])) as resp:
        assert resp.status == 200
        pdf = await resp.read()
    words = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    for expected in (
        "Compte rendu de téléexpertise",
        "Marcel DUPUIS",
        "Dr Gaston Generaliste",
        "Dr Bruno Garde",
        "Thrombopénie",
        "Pétéchies",
        "plaquettes.jpg",
        "Le patient est-il déjà suivi ? : non",
    ):
        assert expected in words, expected
    # The line's figures: one request this month, answered (median time from the test clock).
    months = (await on_call.get(f"/api/expertise/lines/{line['id']}/figures")).body["months"]
    assert months[0]["requests"] == 1 and months[0]["answered"] == 1
    assert months[0]["median_hours_to_answer"] == 0.0 and months[0]["rejected"] == 0
    assert (await gp.get(f"/api/expertise/lines/{line['id']}/figures")).status == 403
    closed = await gp.post(f"/api/expertise/requests/{req['id']}/close")
    assert closed.status == 200 and closed.body["status"] == "closed"

    # A rejection, with its reason in the thread.
    second = await gp.post("/api/expertise/requests", request_body(line["id"], client_id="req-2"))
    rejected = await manager.post(
        f"/api/expertise/requests/{second.body['id']}/reject",
        {"reason": "Relève d'une consultation : adressez le patient au service."},
    )
    assert rejected.status == 200 and rejected.body["status"] == "rejected"
    last = (await gp.get(f"/api/conversations/{second.body['conversation_id']}/messages")).body[
        "items"
    ][-1]
    assert last["body"].startswith("Demande refusée : Relève d'une consultation")
    assert (
        await manager.post(f"/api/expertise/requests/{second.body['id']}/answer", {"body": "x"})
    ).status == 409


async def test_a_late_request_reminds_the_line_then_the_requester(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    clock: FakeClock,
) -> None:
    server = await start_server()
    services = server.app[SERVICES]
    manager = await pro(server, client_of, 1, "Hélène", "Manager")
    member = await pro(server, client_of, 2, "Bruno", "Garde")
    gp = await pro(server, client_of, 3, "Gaston", "Generaliste")
    assert manager.user and member.user and gp.user
    line = (
        await manager.post(
            "/api/expertise/lines",
            {**LINE, "perimeter": None, "members": [member.user["id"]], "delay_hours": 24},
        )
    ).body
    asked = await gp.post("/api/expertise/requests", request_body(line["id"]))
    assert asked.status == 201, asked

    async def late_notices() -> list[tuple[str, str | None]]:
        async with services.sessionmaker() as db:
            rows = await db.scalars(
                select(Notice).where(
                    Notice.kind.in_(
                        [NoticeKind.EXPERTISE_LATE, NoticeKind.EXPERTISE_LATE_REQUESTER]
                    )
                )
            )
            return sorted((n.kind, n.user_id) for n in rows)  # type: ignore[arg-type]

    clock.advance(timedelta(hours=23))
    assert await reminders.sweep(services) == (0, 0)
    clock.advance(timedelta(hours=2))
    assert await reminders.sweep(services) == (1, 0)
    assert await late_notices() == sorted(
        [("expertise_late", manager.user["id"]), ("expertise_late", member.user["id"])]
    )
    await member.login()  # the session went idle meanwhile
    late = (await member.get("/api/expertise/requests?box=received&status=late")).body["items"]
    assert [r["id"] for r in late] == [asked.body["id"]] and late[0]["late"]
    assert await reminders.sweep(services) == (0, 0)  # once
    clock.advance(timedelta(hours=12))
    assert await reminders.sweep(services) == (0, 1)
    assert ("expertise_late_req", gp.user["id"]) in await late_notices()
    assert await reminders.sweep(services) == (0, 0)


async def test_outsiders_get_404_everywhere(
    start_server: Callable[..., Any], client_of: Callable[[TestServer], Client]
) -> None:
    server = await start_server()
    manager = await pro(server, client_of, 1, "Hélène", "Manager")
    gp = await pro(server, client_of, 3, "Gaston", "Generaliste")
    stranger = await pro(server, client_of, 4, "Sophie", "Etrangere")
    patient = client_of(server)
    await patient.register(email="marcel@example.fr", first_name="Marcel", last_name="Dupuis")
    line = (await manager.post("/api/expertise/lines", {**LINE, "perimeter": None})).body
    req = (await gp.post("/api/expertise/requests", request_body(line["id"]))).body
    rid, cid = req["id"], req["conversation_id"]
    for method, path, body in (
        ("GET", "/api/expertise/lines", None),
        ("POST", "/api/expertise/lines", LINE),
        ("GET", f"/api/expertise/lines/{line['id']}", None),
        ("POST", "/api/expertise/requests", request_body(line["id"])),
        ("GET", "/api/expertise/requests", None),
        ("GET", f"/api/expertise/requests/{rid}", None),
        ("POST", f"/api/expertise/requests/{rid}/claim", None),
        ("POST", f"/api/expertise/requests/{rid}/answer", {"body": "x"}),
        ("POST", f"/api/expertise/requests/{rid}/reject", {"reason": "x"}),
        ("GET", "/api/expertise/templates", None),
    ):
        reply = await patient.request(method, path, body)
        assert reply.status == 404, (method, path, reply)
    for method, path, body in (
        ("GET", f"/api/expertise/requests/{rid}", None),
        ("POST", f"/api/expertise/requests/{rid}/claim", None),
        ("POST", f"/api/expertise/requests/{rid}/answer", {"body": "x"}),
        ("POST", f"/api/expertise/requests/{rid}/reject", {"reason": "x"}),
        ("POST", f"/api/expertise/requests/{rid}/close", None),
        ("POST", f"/api/expertise/requests/{rid}/participants", {"user_id": stranger.user["id"]}),  # type: ignore[index]
        ("GET", f"/api/conversations/{cid}/messages", None),
        ("POST", f"/api/conversations/{cid}/messages", {"client_id": "x", "body": "coucou"}),
    ):
        for outsider in (stranger, patient):
            reply = await outsider.request(method, path, body)
            assert reply.status == 404, (method, path, reply)
    # The requester reads but does not answer their own request.
    assert (await gp.post(f"/api/expertise/requests/{rid}/claim")).status == 403


NIR = "185057800608491"


async def test_rqd_and_te2_are_proposed_recorded_and_exported(
    start_server: Callable[..., Any], client_of: Callable[[TestServer], Client]
) -> None:
    server = await start_server()
    manager = await pro(server, client_of, 1, "Hélène", "Manager")
    member = await pro(server, client_of, 2, "Bruno", "Garde")
    gp = await pro(server, client_of, 3, "Gaston", "Generaliste")
    assert manager.user and member.user and gp.user
    line = (
        await manager.post(
            "/api/expertise/lines", {**LINE, "perimeter": None, "members": [member.user["id"]]}
        )
    ).body
    asked = (await gp.post("/api/expertise/requests", request_body(line["id"]))).body
    rid = asked["id"]
    assert (await gp.get(f"/api/expertise/requests/{rid}/billing")).status == 409  # not yet
    answered = await member.post(
        f"/api/expertise/requests/{rid}/answer", {"body": "Rien d'urgent."}
    )
    assert answered.status == 200

    requester = (await gp.get(f"/api/expertise/requests/{rid}/billing")).body
    assert requester["role"] == "requester"
    assert [(a["code"], a["amount_cents"]) for a in requester["acts"]] == [("RQD", 1000)]
    expert = (await member.get(f"/api/expertise/requests/{rid}/billing")).body
    assert [(a["code"], a["amount_cents"]) for a in expert["acts"]] == [("TE2", 2300)]
    # Only the requester and the expert who answered bill it.
    assert (await manager.get(f"/api/expertise/requests/{rid}/billing")).status == 403

    # No NIR given with the request: asked for, beside the other rules.
    missing = await member.post(
        f"/api/expertise/requests/{rid}/billing", {"acts": [{"code": "TE2"}]}
    )
    assert missing.status == 422 and "NIR du patient" in missing.body["detail"]
    wrong = await member.post(
        f"/api/expertise/requests/{rid}/billing",
        {"acts": [{"code": "TE2"}, {"code": "MCS"}], "patient": {"nir": NIR}},
    )
    assert wrong.status == 422 and "TE2 se facture seul" in wrong.body["detail"]
    te2 = await member.post(
        f"/api/expertise/requests/{rid}/billing",
        {"acts": [{"code": "TE2"}], "patient": {"nir": NIR}},
    )
    assert te2.status == 201, te2
    assert te2.body["prescriber_rpps"] == gp.user["rpps"] and te2.body["teleconsultation"] is False
    assert te2.body["patient"]["last_name"] == "Dupuis" and te2.body["patient"]["id"] is None
    again = await member.post(
        f"/api/expertise/requests/{rid}/billing",
        {"acts": [{"code": "TE2"}], "patient": {"nir": NIR}},
    )
    assert again.status == 409
    rqd = await gp.post(
        f"/api/expertise/requests/{rid}/billing",
        {"acts": [{"code": "RQD"}], "patient": {"nir": NIR}},
    )
    assert rqd.status == 201, rqd

    # In the same export as calls, with the patient's names.
    exported = (await member.get("/api/billing/records?from=2026-11-01&to=2026-11-30")).body
    assert [(r["acts"][0]["code"], r["expertise_request_id"]) for r in exported["items"]] == [
        ("TE2", rid)
    ]
    async with member.session.get(
        member.server.make_url("/api/billing/records?from=2026-11-01&to=2026-11-30&format=csv")
    ) as resp:
        text = (await resp.read()).decode("utf-8-sig")
    assert ";TE2;" in text and "Dupuis" in text and gp.user["rpps"] in text

    # A rejected request bills nothing.
    second = (
        await gp.post("/api/expertise/requests", request_body(line["id"], client_id="b"))
    ).body
    await member.post(f"/api/expertise/requests/{second['id']}/reject", {"reason": "Hors champ."})
    refused = await gp.post(
        f"/api/expertise/requests/{second['id']}/billing",
        {"acts": [{"code": "RQD"}], "patient": {"nir": NIR}},
    )
    assert refused.status == 422 and "refusée ne se facture pas" in refused.body["detail"]


async def test_the_exchange_is_live_for_members_and_closed_to_outsiders_sockets(
    start_server: Callable[..., Any], client_of: Callable[[TestServer], Client]
) -> None:
    from tests.signaling.sockets import Tab

    server = await start_server()
    manager = await pro(server, client_of, 1, "Hélène", "Manager")
    gp = await pro(server, client_of, 3, "Gaston", "Generaliste")
    stranger = await pro(server, client_of, 4, "Sophie", "Etrangere")
    patient = client_of(server)
    await patient.register(email="marcel@example.fr", first_name="Marcel", last_name="Dupuis")
    line = (await manager.post("/api/expertise/lines", {**LINE, "perimeter": None})).body
    req = (await gp.post("/api/expertise/requests", request_body(line["id"]))).body
    cid = req["conversation_id"]
    tabs = [Tab(manager), Tab(stranger), Tab(patient)]
    try:
        for tab in tabs:
            await tab.connect()
        member, *outsiders = tabs
        assert (await member.subscribe(cid))["ok"] is True
        for outsider in outsiders:
            refused = await outsider.subscribe(cid)
            assert refused["ok"] is False and refused["status"] == 404, refused
        sent = await gp.post(
            f"/api/conversations/{cid}/messages", {"client_id": "x", "body": "Précision : 72 ans."}
        )
        assert sent.status == 201
        arrived = await member.wait_for("message:new")
        assert arrived[-1]["body"] == "Précision : 72 ans."
        for outsider in outsiders:
            assert not outsider.events.get("message:new")
    finally:
        for tab in tabs:
            await tab.close()
