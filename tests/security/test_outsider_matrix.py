"""The outsider matrix, generated from the application's own router: every route that names a
resource is called, by people who have no business with it, with the ids of Dr Martin's real
resources. None may succeed, none may echo an id it was not given, and nothing changes. A route
added tomorrow is called the day it is added; one whose parameter names a kind of resource this
test does not know fails it, until the kind is added below."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from tests.helpers import Client, connect, valid_rpps
from tests.server.test_billing import record_body, video_call

MakeClient = Callable[[], Client]

# What an outsider may be answered: refusals, and "your input is wrong" (which says nothing).
REFUSALS = {400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 429}
# Routes anyone may call, or that only concern the caller's own account.
# The invitation link's token is itself the credential (whoever holds the link is the invitee):
# those routes are tested in test_invitations.py, not here.
BY_TOKEN = re.compile(r"^/api/invitations/token/")
# Routes that side effects of an outsider's call would not tell apart: signing out, uploading
# their own file, the provider's webhook.
OWN_ACTIONS = re.compile(r"^/api/(auth/|uploads$|payments/stripe/webhook$)")


def api_routes(server: TestServer) -> list[tuple[str, str]]:
    found = []
    for route in server.app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if route.method in {"HEAD", "OPTIONS", "*"} or not canonical.startswith("/api/"):
            continue
        if BY_TOKEN.match(canonical) or OWN_ACTIONS.match(canonical):
            continue
        found.append((route.method, canonical))
    return sorted(found)


async def test_no_outsider_reaches_anything_of_another_practice(
    server: TestServer, doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    assert doctor.user and patient.user
    cid = await connect(doctor, patient)
    form = aiohttp.FormData()
    form.add_field("file", b"%PDF-1.4 test", filename="ordonnance.pdf")
    attachment = (await doctor.request("POST", "/api/uploads", data=form)).body["id"]
    posted = await doctor.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "m1", "body": "Ordonnance", "attachment_ids": [attachment]},
    )
    assert posted.status == 201
    call_id = await video_call(doctor, patient, cid, end=False)
    record = await doctor.post(
        f"/api/calls/{call_id}/billing", record_body("TCG", pathway="treating_doctor")
    )
    assert record.status == 201, record
    payment = await doctor.post(
        f"/api/conversations/{cid}/payment-requests", {"amount_cents": 2500, "label": "TC"}
    )
    invitation = await doctor.post(
        "/api/invitations", {"first_name": "A", "last_name": "B", "email": "ab@example.fr"}
    )
    assert invitation.status == 201
    second = make_client()
    await second.register(email="p2@example.fr", first_name="P", last_name="Deux")
    request = await second.post("/api/contact-requests", {"practitioner_id": doctor.user["id"]})
    # Dr Martin's advice line, and a colleague's tele-expertise request to it.
    line = await doctor.post(
        "/api/expertise/lines", {"name": "Avis", "specialty": "general_practice"}
    )
    assert line.status == 201, line
    colleague = make_client()
    await colleague.register(
        email="c@example.fr",
        first_name="C",
        last_name="Ollegue",
        role="doctor",
        rpps=valid_rpps(43),
    )
    expertise = await colleague.post(
        "/api/expertise/requests",
        {
            "line_id": line.body["id"],
            "patient": {"first_name": "X", "last_name": "Y", "birth_date": "1950-01-01"},
            "consent": True,
            "question": "Avis ?",
        },
    )
    assert expertise.status == 201, expertise
    # Each kind of resource a route can name, by the words before its parameter.
    ids = {
        "conversations": cid,
        "attachments": attachment,
        "calls": call_id,
        "billing/records": record.body["id"],
        "payment-requests": payment.body["id"],
        "invitations": invitation.body["id"],
        "contact-requests": request.body["id"],
        "admin/users": doctor.user["id"],
        "expertise/lines": line.body["id"],
        "expertise/requests": expertise.body["id"],
    }
    # A line is in the directory every professional reads (patients get 404).
    public_to_professionals = {"expertise/lines"}
    secrets = {v for k, v in ids.items() if k not in {"admin/users", *public_to_professionals}}
    secrets.add(expertise.body["conversation_id"])

    stranger = make_client()
    await stranger.register(email="s@example.fr", first_name="Sam", last_name="S")
    other_doctor = make_client()
    await other_doctor.register(
        email="o@example.fr", first_name="O", last_name="D", role="doctor", rpps=valid_rpps(41)
    )
    nurse = make_client()
    await nurse.register(
        email="n@example.fr", first_name="N", last_name="N", role="nurse", rpps=valid_rpps(42)
    )
    before = await snapshot(doctor, cid)

    failures = []
    routes = api_routes(server)
    assert len(routes) >= 30
    for method, canonical in routes:
        names = re.findall(r"{([^}]+)}", canonical)
        prefix = canonical.split("/{", 1)[0].removeprefix("/api/")
        if names and prefix not in ids:
            failures.append(f"{method} {canonical}: unknown resource {prefix!r}, add it to ids")
            continue
        if not names and method != "GET":
            continue  # creating something of one's own: not about others' resources
        path = re.sub(r"{[^}]+}", ids.get(prefix, ""), canonical)
        for name, caller in (
            ("stranger", stranger),
            ("other_doctor", other_doctor),
            ("nurse", nurse),
        ):
            body = {} if method in {"POST", "PUT", "PATCH"} else None
            reply = await caller.request(method, path, body)
            text = str(reply.body)
            # A list of one's own (no id in the path) may answer; it must hold nothing of
            # Dr Martin's (checked below).
            readable = prefix in public_to_professionals and method == "GET" and name != "stranger"
            if names and reply.status not in REFUSALS and not readable:
                failures.append(f"{name} {method} {path}: {reply.status} {text[:200]}")
            if prefix in public_to_professionals and name == "stranger" and reply.status != 404:
                failures.append(f"{name} {method} {path}: {reply.status}, not 404 to a patient")
            leaked = [s for s in secrets if s in text and s not in path]
            if leaked:
                failures.append(f"{name} {method} {path}: echoes {leaked}")
    assert not failures, "\n".join(failures)
    assert await snapshot(doctor, cid) == before


async def snapshot(doctor: Client, cid: str) -> Any:
    """What an outsider's calls must not have changed."""
    conversation = (await doctor.get(f"/api/conversations/{cid}")).body
    messages = (await doctor.get(f"/api/conversations/{cid}/messages")).body["items"]
    invitations = (await doctor.get("/api/invitations")).body["items"]
    payments = (await doctor.get(f"/api/conversations/{cid}/payment-requests")).body["items"]
    records = (await doctor.get("/api/billing/records")).body["items"]
    return (
        conversation.get("patient_can_write"),
        [(m["id"], m["body"]) for m in messages],
        [(i["id"], i["status"], i["first_name"]) for i in invitations],
        [(p["id"], p["status"]) for p in payments],
        [r["id"] for r in records],
    )
