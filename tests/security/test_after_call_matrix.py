"""Documents, payment requests and billing × every role: who gets in, who gets 401/403/404, and
that refused calls change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.helpers import Client, check_route_matrix, connect, make_secretary, valid_rpps
from tests.server.test_billing import record_body, video_call

MakeClient = Callable[[], Client]


async def test_after_call_route_matrix(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    assert doctor.user
    cid = await connect(doctor, patient)
    call_id = await video_call(doctor, patient, cid)
    document = await doctor.post(
        f"/api/conversations/{cid}/documents", {"kind": "prescription", "lines": ["Repos"]}
    )
    assert document.status == 201
    payment = await doctor.post(
        f"/api/conversations/{cid}/payment-requests", {"amount_cents": 2500, "label": "TC"}
    )
    pid = payment.body["id"]

    anonymous = make_client()
    stranger = make_client()
    await stranger.register(email="s@example.fr", first_name="Sam", last_name="S")
    other_doctor = make_client()
    await other_doctor.register(
        email="o@example.fr", first_name="O", last_name="D", role="doctor", rpps=valid_rpps(31)
    )
    nurse = make_client()
    await nurse.register(
        email="n@example.fr", first_name="N", last_name="N", role="nurse", rpps=valid_rpps(32)
    )
    secretary = make_client()
    await make_secretary(secretary, doctor.user["id"])
    callers = {
        "anonymous": anonymous,
        "patient": patient,
        "stranger": stranger,
        "other_doctor": other_doctor,
        "nurse": nurse,
        "secretary": secretary,
    }
    not_member = {"stranger": 404, "other_doctor": 404, "nurse": 404}
    routes: list[tuple[str, str, Any, dict[str, int]]] = [
        (
            "GET",
            f"/api/conversations/{cid}/documents",
            None,
            {"anonymous": 401, "patient": 200, "secretary": 200, **not_member},
        ),
        (
            "POST",
            f"/api/conversations/{cid}/documents",
            {"kind": "prescription", "lines": ["x"]},
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
            f"/api/conversations/{cid}/payment-requests",
            None,
            {"anonymous": 401, "patient": 200, "secretary": 200, **not_member},
        ),
        (
            "POST",
            f"/api/conversations/{cid}/payment-requests",
            {"amount_cents": 100, "label": "x"},
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 404,
                "nurse": 403,
            },
        ),
        (
            "GET",
            f"/api/payment-requests/{pid}",
            None,
            {"anonymous": 401, "patient": 200, "secretary": 200, **not_member},
        ),
        (
            "POST",
            f"/api/payment-requests/{pid}/cancel",
            None,
            {"anonymous": 401, "patient": 403, **not_member},
        ),
        (
            "POST",
            f"/api/payment-requests/{pid}/mark-paid",
            {"method": "cash"},
            {"anonymous": 401, "patient": 403, **not_member},
        ),
        (
            "POST",
            f"/api/payment-requests/{pid}/checkout",
            None,
            {"anonymous": 401, "patient": 409, "secretary": 403, **not_member},
        ),
        (
            "GET",
            f"/api/calls/{call_id}/billing",
            None,
            {"anonymous": 401, "patient": 403, "secretary": 200, **not_member},
        ),
        (
            "POST",
            f"/api/calls/{call_id}/billing",
            record_body("TCG"),
            {"anonymous": 401, "patient": 403, **not_member},
        ),
        (
            "GET",
            "/api/billing/records",
            None,
            {
                "anonymous": 401,
                "patient": 403,
                "stranger": 403,
                "other_doctor": 200,
                "nurse": 200,
                "secretary": 200,
            },
        ),
        (
            "GET",
            "/api/me/billing-profile",
            None,
            {"anonymous": 401, "patient": 403, "secretary": 403, "nurse": 200},
        ),
        (
            "PUT",
            "/api/me/billing-profile",
            {"yearly_acts": 1000},
            {"anonymous": 401, "patient": 403, "secretary": 403, "other_doctor": 200},
        ),
        (
            "POST",
            "/api/payments/stripe/webhook",
            {},
            {"anonymous": 404, "patient": 404, "other_doctor": 404},
        ),
    ]
    await check_route_matrix(routes, callers)

    # Nothing above changed the request, the documents, or the billing of the call.
    assert (await doctor.get(f"/api/payment-requests/{pid}")).body["status"] == "requested"
    documents = (await doctor.get(f"/api/conversations/{cid}/documents")).body["items"]
    assert [d["id"] for d in documents] == [document.body["document"]["id"]]
    assert (await doctor.get("/api/billing/records")).body["items"] == []
    assert len((await doctor.get("/api/payment-requests")).body["items"]) == 1
