"""Existence oracles: an answer that differs between "does not exist" and "not yours" tells an
outsider which ids are real. Each pair of answers here must be the same, word for word."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from tests.helpers import Client, connect, valid_rpps
from tests.server.test_billing import record_body, video_call

MakeClient = Callable[[], Client]


def same_answer(a: object, b: object) -> None:
    assert a == b, f"{a} != {b}"


async def test_someone_elses_attachment_looks_like_an_unknown_one(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    form = aiohttp.FormData()
    form.add_field("file", b"%PDF-1.4 test", filename="ordonnance.pdf")
    attachment = (await doctor.request("POST", "/api/uploads", data=form)).body
    posted = await doctor.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "c1", "body": "Ordonnance", "attachment_ids": [attachment["id"]]},
    )
    assert posted.status == 201
    stranger = make_client()
    await stranger.register(email="sam@example.fr", first_name="Sam", last_name="S")
    theirs = await stranger.get(f"/api/attachments/{attachment['id']}")
    unknown = await stranger.get("/api/attachments/0123456789abcdef0123456789abcdef")
    same_answer((theirs.status, theirs.body), (unknown.status, unknown.body))
    assert theirs.status == 404


async def test_someone_elses_billing_record_looks_like_an_unknown_one(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    call_id = await video_call(doctor, patient, cid)
    record = await doctor.post(
        f"/api/calls/{call_id}/billing", record_body("TCG", pathway="treating_doctor")
    )
    assert record.status == 201, record
    real, unknown = record.body["id"], "0123456789abcdef0123456789abcdef"
    other_doctor = make_client()
    await other_doctor.register(
        email="o@example.fr", first_name="O", last_name="D", role="doctor", rpps=valid_rpps(31)
    )
    for caller in (patient, other_doctor):
        theirs = await caller.request("DELETE", f"/api/billing/records/{real}")
        none = await caller.request("DELETE", f"/api/billing/records/{unknown}")
        same_answer((theirs.status, theirs.body), (none.status, none.body))
    # The record is still there.
    listed = (await doctor.get("/api/billing/records")).body["items"]
    assert [r["id"] for r in listed] == [real]
