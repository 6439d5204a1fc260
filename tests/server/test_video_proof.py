"""The proof of video that decides billing counts people, not connections: what an outside
audit forged on the old record gets no act, with the reason; honest calls get theirs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.calls import Link, both_ways, in_call, report
from tests.helpers import Client, connect, valid_rpps
from tests.server.test_billing import record_body

MakeClient = Callable[[], Client]


async def start(doctor: Client, cid: str, **body: Any) -> str:
    return str((await doctor.post(f"/api/conversations/{cid}/calls", body)).body["id"])


async def nurse_of(make_client: MakeClient) -> Client:
    nurse = make_client()
    await nurse.register(
        email="nina@example.fr",
        first_name="Nina",
        last_name="Nurse",
        role="nurse",
        rpps=valid_rpps(33),
    )
    return nurse


async def refused(client: Client, call_id: str, code: str, why: str) -> None:
    proposal = await client.get(f"/api/calls/{call_id}/billing")
    assert proposal.status == 200 and proposal.body["acts"] == [], proposal
    saved = await client.post(f"/api/calls/{call_id}/billing", record_body(code))
    assert saved.status == 422, saved
    assert why in saved.body["detail"], saved.body["detail"]


async def test_a_doctor_alone_with_two_tabs_proves_nothing(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    call_id = await start(doctor, cid)
    first = await in_call(doctor, call_id)
    second = await in_call(doctor, call_id)
    # One participant per person: the second tab took the first one's place at once.
    [replaced] = await first.wait_for("call:replaced")
    assert replaced["peer_id"] == first.peer_id  # type: ignore[attr-defined]
    # Both tabs report receiving the other's video for a minute; the first is no longer in the
    # call (404), the second reports about its own person.
    stale = await first.sio.call(
        "call:stats",
        {"call_id": call_id, "about": second.peer_id, "stats": {}},  # type: ignore[attr-defined]
        timeout=5,
    )
    assert stale["ok"] is False and stale["status"] == 404
    await report(call_id, [Link(second, first)], 60)
    record = (await doctor.get(f"/api/calls/{call_id}")).body
    assert record["video_both_ways_seconds"] == 0
    assert [p["present"] for p in record["participants"]] == [True]
    await refused(doctor, call_id, "TCG", "le patient n'a pas rejoint l'appel")
    for tab in (first, second):
        await tab.close()


async def test_a_patient_whose_two_tabs_saw_each_other_makes_nobody_billable(
    doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    call_id = await start(doctor, cid)
    # The doctor opened the call and went away before anyone came.
    gone = await in_call(doctor, call_id)
    await gone.sio.call("call:leave", {"call_id": call_id}, timeout=5)
    p1 = await in_call(patient, call_id)
    p2 = await in_call(patient, call_id)
    # The first tab was replaced by the second (its reports are refused): the second reports
    # receiving the first's video for a minute, and sending it its own.
    await report(call_id, [Link(p2, p1)], 60)
    await refused(doctor, call_id, "TCG", "la vidéo du patient ne vous est pas parvenue")
    for tab in (gone, p1, p2):
        await tab.close()


async def test_a_doctor_who_received_no_video_in_a_three_party_call_is_not_credited(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    nurse = await nurse_of(make_client)
    call_id = await start(doctor, cid)
    invited = await doctor.post(
        f"/api/calls/{call_id}/invite-nurse",
        {"nurse_id": nurse.user["id"], "assistance": "remote"},  # type: ignore[index]
    )
    assert invited.status == 200
    d, p, n = [await in_call(c, call_id) for c in (doctor, patient, nurse)]
    # The nurse and the doctor see each other; the patient sees the doctor; the patient's
    # picture never reaches the doctor (what the old record credited 60 s for).
    links = [
        *both_ways(d, n),
        Link(p, d),
        Link(d, p, decoded_fps=0),
        Link(p, n),
        Link(n, p),
    ]
    await report(call_id, links, 60)
    await refused(doctor, call_id, "TCG", "la vidéo du patient ne vous est pas parvenue")
    for tab in (d, p, n):
        await tab.close()


async def test_a_page_cannot_prove_alone_what_it_received(doctor: Client, patient: Client) -> None:
    """Peer to peer, a receiver's decoded frames count only where the sender's own page shows
    it sending them: a patient claiming the doctor's picture while the doctor's camera sent
    nothing proves nothing."""
    cid = await connect(doctor, patient)
    call_id = await start(doctor, cid)
    d, p = await in_call(doctor, call_id), await in_call(patient, call_id)
    # The doctor's camera sends nothing; the patient's page claims the doctor's picture anyway.
    forged = [Link(d, p, sent_fps=0), Link(p, d)]
    await report(call_id, forged, 60)
    await refused(doctor, call_id, "TCG", "votre vidéo n'est pas parvenue au patient")
    for tab in (d, p):
        await tab.close()


async def test_ten_honest_seconds_are_enough(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    call_id = await start(doctor, cid)
    d, p = await in_call(doctor, call_id), await in_call(patient, call_id)
    await report(call_id, both_ways(d, p), 10)
    record = (await doctor.get(f"/api/calls/{call_id}")).body
    assert record["video_both_ways_seconds"] == 10
    proposal = await doctor.get(f"/api/calls/{call_id}/billing")
    assert [a["code"] for a in proposal.body["acts"]] == ["TCG"], proposal
    saved = await doctor.post(f"/api/calls/{call_id}/billing", record_body("TCG"))
    assert saved.status == 201, saved
    for tab in (d, p):
        await tab.close()


async def test_a_nurse_who_left_early_and_a_patient_who_rejoined_are_both_credited(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    """The old record counted only time when every connection overlapped: this honest two-minute
    call was credited 0 s and both acts refused."""
    cid = await connect(doctor, patient)
    nurse = await nurse_of(make_client)
    call_id = await start(doctor, cid)
    await doctor.post(
        f"/api/calls/{call_id}/invite-nurse",
        {"nurse_id": nurse.user["id"], "assistance": "remote", "place": "home"},  # type: ignore[index]
    )
    d, p, n = [await in_call(c, call_id) for c in (doctor, patient, nurse)]
    await report(call_id, [*both_ways(d, p), *both_ways(d, n), *both_ways(p, n)], 30)
    await n.sio.call("call:leave", {"call_id": call_id}, timeout=5)
    await report(call_id, both_ways(d, p), 30)
    # The patient's network changes: their page comes back on a new socket.
    back = await in_call(patient, call_id)
    left = (await d.wait_for("call:peer-left", 2))[-1]
    assert left["peer_id"] == p.peer_id  # type: ignore[attr-defined]
    await report(call_id, both_ways(d, back), 60)
    await doctor.post(f"/api/calls/{call_id}/end")
    record = (await doctor.get(f"/api/calls/{call_id}")).body
    # One entry per person, the patient's showing their latest connection.
    people = {x["user"]["role"]: x for x in record["participants"]}
    assert len(record["participants"]) == 3 and set(people) == {"doctor", "patient", "nurse"}
    assert people["patient"]["peer_id"] == back.peer_id  # type: ignore[attr-defined]
    # Every sample stretch but the 5 s around the reconnection, when the new page had just
    # begun reporting.
    assert record["video_both_ways_seconds"] >= 110, record["video_both_ways_seconds"]
    doctor_act = await doctor.post(f"/api/calls/{call_id}/billing", record_body("TCG"))
    assert doctor_act.status == 201, doctor_act
    nurse_act = await nurse.post(f"/api/calls/{call_id}/billing", record_body("TLD"))
    assert nurse_act.status == 201, nurse_act
    for tab in (d, p, n, back):
        await tab.close()
