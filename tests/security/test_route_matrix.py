"""Every protected route × every role: who gets in, who gets 401/403/404.

The resources used belong to Dr Martin; other professionals must get 404 (never a hint that the
resource exists), roles that may never use a route get 403, anonymous callers 401.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import Client, check_route_matrix, make_secretary, outbox_links, valid_rpps

MakeClient = Callable[[], Client]


async def test_role_route_matrix(
    doctor: Client, patient: Client, make_client: MakeClient, outbox: Path
) -> None:
    doctor_id = doctor.user["id"]  # type: ignore[index]
    invitation = (
        await doctor.post(
            "/api/invitations", {"first_name": "A", "last_name": "B", "email": "ab@example.fr"}
        )
    ).body
    request = (await patient.post("/api/contact-requests", {"practitioner_id": doctor_id})).body
    conversation_id = (await doctor.post(f"/api/contact-requests/{request['id']}/accept")).body[
        "conversation_id"
    ]
    pdf = aiohttp.FormData()
    pdf.add_field("file", b"%PDF-1.4 test", filename="ordonnance.pdf")
    attachment_id = (await doctor.request("POST", "/api/uploads", data=pdf)).body["id"]
    posted = await doctor.post(
        f"/api/conversations/{conversation_id}/messages",
        {
            "client_id": "with-file",
            "body": "Ordonnance",
            "attachment_ids": [attachment_id],
            "reply_allowed": False,
        },
    )
    assert posted.status == 201
    second_request_patient = make_client()
    await second_request_patient.register(email="p2@example.fr", first_name="P", last_name="Deux")
    request2 = (
        await second_request_patient.post("/api/contact-requests", {"practitioner_id": doctor_id})
    ).body

    anonymous = make_client()
    other_doctor = make_client()
    await other_doctor.register(
        email="o@example.fr",
        first_name="Paul",
        last_name="Roux",
        role="doctor",
        rpps=valid_rpps(21),
    )
    nurse = make_client()
    await nurse.register(
        email="n@example.fr",
        first_name="Nina",
        last_name="Nurse",
        role="nurse",
        rpps=valid_rpps(22),
    )
    secretary = make_client()
    await make_secretary(secretary, doctor_id)
    stranger = make_client()
    await stranger.register(email="s@example.fr", first_name="Sam", last_name="Stranger")

    inv = invitation["id"]
    req = request2["id"]
    body_inv = {"first_name": "X", "last_name": "Y", "email": "xy@example.fr"}
    # (method, path, body, {role: expected status})
    routes: list[tuple[str, str, Any, dict[str, int]]] = [
        (
            "GET",
            "/api/me",
            None,
            {
                "anonymous": 401,
                "patient": 200,
                "stranger": 200,
                "other_doctor": 200,
                "nurse": 200,
                "secretary": 200,
            },
        ),
        (
            "GET",
            "/api/invitations",
            None,
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 200,
                "nurse": 200,
                "secretary": 403,
            },
        ),
        (
            "POST",
            "/api/invitations",
            body_inv,
            {"anonymous": 401, "patient": 403, "stranger": 403, "secretary": 403},
        ),
        (
            "PATCH",
            f"/api/invitations/{inv}",
            {"first_name": "Z"},
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 403,
            },
        ),
        (
            "POST",
            f"/api/invitations/{inv}/resend",
            None,
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 403,
            },
        ),
        (
            "POST",
            f"/api/invitations/{inv}/cancel",
            None,
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 403,
            },
        ),
        (
            "GET",
            "/api/practitioners?q=martin",
            None,
            {
                "anonymous": 401,
                "patient": 200,
                "stranger": 200,
                "other_doctor": 200,
                "nurse": 200,
                "secretary": 200,
            },
        ),
        (
            "GET",
            "/api/contact-requests",
            None,
            {
                "anonymous": 401,
                "patient": 200,
                "stranger": 200,
                "other_doctor": 200,
                "nurse": 200,
                "secretary": 403,
            },
        ),
        (
            "POST",
            "/api/contact-requests",
            {"practitioner_id": doctor_id},
            {"anonymous": 401, "other_doctor": 403, "nurse": 403, "secretary": 403},
        ),
        (
            "POST",
            f"/api/contact-requests/{req}/accept",
            None,
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 403,
            },
        ),
        (
            "POST",
            f"/api/contact-requests/{req}/decline",
            None,
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 403,
            },
        ),
        (
            "GET",
            "/api/conversations",
            None,
            {
                "anonymous": 401,
                "patient": 200,
                "stranger": 200,
                "other_doctor": 200,
                "nurse": 200,
                "secretary": 200,
            },
        ),
        (
            "GET",
            f"/api/conversations/{conversation_id}",
            None,
            {
                "anonymous": 401,
                "patient": 200,
                "stranger": 404,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 200,
            },
        ),
        (
            "GET",
            f"/api/conversations/{conversation_id}/messages",
            None,
            {
                "anonymous": 401,
                "patient": 200,
                "stranger": 404,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 200,
            },
        ),
        # The doctor's last message expects no answer: the patient gets 403 with the reason.
        (
            "POST",
            f"/api/conversations/{conversation_id}/messages",
            {"client_id": "m", "body": "x"},
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 404,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 201,
            },
        ),
        (
            "POST",
            f"/api/conversations/{conversation_id}/read",
            {"up_to_seq": 1},
            {
                "anonymous": 401,
                "patient": 204,
                "stranger": 404,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 204,
            },
        ),
        (
            "PATCH",
            f"/api/conversations/{conversation_id}",
            {"patient_can_write": None},
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 200,
            },
        ),
        (
            "POST",
            f"/api/conversations/{conversation_id}/participants",
            {"user_id": doctor_id},
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 200,
            },
        ),
        (
            "GET",
            f"/api/attachments/{attachment_id}",
            None,
            {
                "anonymous": 401,
                "patient": 200,
                "stranger": 404,
                "other_doctor": 404,
                "nurse": 404,
                "secretary": 200,
            },
        ),
        (
            "GET",
            "/api/me/messaging",
            None,
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 200,
                "nurse": 200,
                "secretary": 403,
            },
        ),
        (
            "PUT",
            "/api/me/messaging",
            {"open": False},
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 200,
                "nurse": 200,
                "secretary": 403,
            },
        ),
        ("POST", "/api/uploads", None, {"anonymous": 401}),
    ]
    callers = {
        "anonymous": anonymous,
        "patient": patient,
        "stranger": stranger,
        "other_doctor": other_doctor,
        "nurse": nurse,
        "secretary": secretary,
    }
    await check_route_matrix(routes, callers)

    # The secretary sees the doctor's conversations, a stranger sees none.
    assert [c["id"] for c in (await secretary.get("/api/conversations")).body["items"]] == [
        conversation_id
    ]
    assert (await stranger.get("/api/conversations")).body["items"] == []
    # Only the secretary's message was added by the calls above (besides the doctor's own).
    history = (await doctor.get(f"/api/conversations/{conversation_id}/messages")).body["items"]
    assert [m["author"]["role"] for m in history] == ["doctor", "secretary"]
    # The invitation was left untouched by every refused call.
    [mine] = [i for i in (await doctor.get("/api/invitations")).body["items"] if i["id"] == inv]
    assert mine["status"] == "pending" and mine["first_name"] == "A"
    assert len(outbox_links(outbox)) == 1
