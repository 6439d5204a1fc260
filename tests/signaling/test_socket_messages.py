"""Real-time delivery through socket.io: every tab of every member, nothing for outsiders,
catch-up after a cut with no gap and no duplicate."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import socketio

from tests.helpers import Client, connect
from tests.signaling.sockets import Tab

MakeClient = Callable[[], Client]


async def say(client: Client, conversation_id: str, body: str) -> dict:  # type: ignore[type-arg]
    reply = await client.post(
        f"/api/conversations/{conversation_id}/messages", {"client_id": body, "body": body}
    )
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def test_live_delivery_to_every_tab(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    cid = await connect(doctor, patient)
    patient_phone, patient_laptop, doctor_tab = tabs(patient), tabs(patient), tabs(doctor)
    for tab in (patient_phone, patient_laptop, doctor_tab):
        await tab.connect()
        assert (await tab.subscribe(cid)) == {"ok": True, "items": []}
    sent = await say(doctor, cid, "Bonjour")
    for tab in (patient_phone, patient_laptop, doctor_tab):
        [event] = await tab.wait_for("message:new")
        assert event["id"] == sent["id"] and event["seq"] == 1 and event["body"] == "Bonjour"
    await patient.post(f"/api/conversations/{cid}/read", {"up_to_seq": 1})
    [read] = await doctor_tab.wait_for("message:read")
    assert read == {"conversation_id": cid, "user_id": patient.user["id"], "up_to_seq": 1}  # type: ignore[index]
    await doctor.patch(f"/api/conversations/{cid}", {"patient_can_write": True})
    [state] = await patient_phone.wait_for("conversation:state")
    assert state == {"conversation_id": cid}


async def test_activity_reaches_the_pages_without_the_conversation_open(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    """The conversation list of every member's other pages moves with each message; a page with
    the conversation open gets the message instead, not both."""
    cid = await connect(doctor, patient)
    doctor_list, doctor_thread, patient_list = tabs(doctor), tabs(doctor), tabs(patient)
    for tab in (doctor_list, doctor_thread, patient_list):
        await tab.connect()
    await doctor_thread.subscribe(cid)
    sent = await say(doctor, cid, "Bonjour")
    for tab in (doctor_list, patient_list):
        [activity] = await tab.wait_for("conversation:activity")
        assert activity == {"conversation_id": cid, "seq": sent["seq"]}
    [message] = await doctor_thread.wait_for("message:new")
    assert message["id"] == sent["id"]
    await say(patient, cid, "Bonjour docteur")
    await doctor_list.wait_for("conversation:activity", 2)
    await doctor_thread.wait_for("message:new", 2)
    # Everything for these two messages has arrived by now, in order on each socket.
    assert "conversation:activity" not in doctor_thread.events
    assert "message:new" not in doctor_list.events and "message:new" not in patient_list.events


async def test_catch_up_after_a_cut_has_no_gap_and_no_duplicate(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    cid = await connect(doctor, patient)
    tab = tabs(patient)
    await tab.connect()
    await tab.subscribe(cid)
    for i in range(3):
        await say(doctor, cid, f"avant-{i}")
    seen = await tab.wait_for("message:new", 3)
    last_seq = max(e["seq"] for e in seen)
    await tab.close()  # the network drops
    for i in range(250):  # more than one page of catch-up (200)
        await say(doctor, cid, f"pendant-{i}")
    back = tabs(patient)
    await back.connect()
    reply = await back.subscribe(cid, after_seq=last_seq)
    assert reply["ok"] is True
    seqs = [m["seq"] for m in reply["items"]]
    assert seqs == list(range(4, 254))
    await say(doctor, cid, "après")
    [live] = await back.wait_for("message:new")
    assert live["seq"] == 254


async def test_outsiders_get_nothing(
    doctor: Client, patient: Client, make_client: MakeClient, tabs: Callable[[Client], Tab]
) -> None:
    cid = await connect(doctor, patient)
    stranger = make_client()
    await stranger.register(email="s@example.fr", first_name="Sam", last_name="Stranger")
    other_doctor = make_client()
    from tests.helpers import valid_rpps

    await other_doctor.register(
        email="o@example.fr",
        first_name="Paul",
        last_name="Roux",
        role="doctor",
        rpps=valid_rpps(50),
    )
    own_cid = await connect(other_doctor, stranger)
    spy = tabs(stranger)
    await spy.connect()
    refused = await spy.subscribe(cid)
    assert refused == {
        "ok": False,
        "type": "https://teleconsult.example/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "Conversation introuvable.",
    }
    assert (await spy.subscribe(own_cid))["ok"] is True
    await say(doctor, cid, "secret médical")
    await say(other_doctor, own_cid, "pour Sam")
    [event] = await spy.wait_for("message:new")
    # Sam's own message arrived after the other one was published: had the other leaked, it
    # would be here first.
    assert event["body"] == "pour Sam" and len(spy.events["message:new"]) == 1
    bad = await spy.sio.call("conversation:subscribe", {"conversation_id": 42}, timeout=5)
    assert bad["ok"] is False and bad["status"] == 422


async def test_connection_needs_a_session_and_our_origin(
    patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await tabs(patient).connect(cookie="not-a-session")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await tabs(patient).connect(origin="https://evil.example")
    ok = tabs(patient)
    await ok.connect(origin="http://teleconsult.test")  # TC_PUBLIC_URL behind a proxy
    assert ok.sio.connected


async def test_a_call_link_reaches_the_list_pages_like_any_message(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    """The call's link was announced by hand to the open thread only: a patient's list page
    (the conversation not open) never refreshed. It goes out the one way every message does."""
    cid = await connect(doctor, patient)
    thread, listing = tabs(patient), tabs(patient)
    await thread.connect()
    await listing.connect()
    assert (await thread.subscribe(cid))["ok"]
    call = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    [link] = await thread.wait_for("message:new")
    assert call["id"] in link["body"]
    [activity] = await listing.wait_for("conversation:activity")
    assert activity == {"conversation_id": cid, "seq": link["seq"]}
    assert "conversation:activity" not in thread.events  # the thread got the message itself
