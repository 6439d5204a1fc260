"""Call signaling: join, relay between peers of one call only, leave, end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from server.calls import service
from tests.helpers import Client, connect, valid_rpps
from tests.signaling.sockets import Tab

MakeClient = Callable[[], Client]


async def join(tab: Tab, call_id: str) -> dict[str, Any]:
    reply: dict[str, Any] = await tab.sio.call("call:join", {"call_id": call_id}, timeout=5)
    return reply


async def test_ring_join_relay_leave_end(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    cid = await connect(doctor, patient)
    d, p = tabs(doctor), tabs(patient)
    await d.connect()
    await p.connect()
    call = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    [ring] = await p.wait_for("call:ring")
    assert ring["call_id"] == call["id"] and ring["from"]["display_name"] == "Dr Claire Martin"
    first = await join(d, call["id"])
    assert first["ok"] and first["peers"] == [] and first["ice_servers"] == []
    second = await join(p, call["id"])
    assert second["ok"] and [x["peer_id"] for x in second["peers"]] == [first["peer_id"]]
    [joined] = await d.wait_for("call:peer-joined")
    assert joined["peer_id"] == second["peer_id"] and joined["user"]["role"] == "patient"
    offer = {"type": "offer", "sdp": "v=0\r\n"}
    sent = await p.sio.call(
        "call:signal",
        {"call_id": call["id"], "to": first["peer_id"], "description": offer},
        timeout=5,
    )
    assert sent == {"ok": True}
    [relayed] = await d.wait_for("call:signal")
    assert relayed == {"call_id": call["id"], "from": second["peer_id"], "description": offer}
    end_of_candidates = await d.sio.call(
        "call:signal",
        {"call_id": call["id"], "to": second["peer_id"], "candidate": None},
        timeout=5,
    )
    assert end_of_candidates == {"ok": True}
    [candidate] = await p.wait_for("call:signal")
    assert candidate["candidate"] is None and candidate["from"] == first["peer_id"]
    assert (await doctor.get(f"/api/calls/{call['id']}")).body["status"] == "active"
    await p.sio.call("call:leave", {"call_id": call["id"]}, timeout=5)
    [left] = await d.wait_for("call:peer-left")
    assert left["peer_id"] == second["peer_id"]
    await doctor.post(f"/api/calls/{call['id']}/end")
    [ended] = await d.wait_for("call:ended")
    assert ended == {"call_id": call["id"]}
    refused = await join(p, call["id"])
    assert refused["ok"] is False and refused["status"] == 409


async def test_signals_never_cross_calls_and_outsiders_cannot_join(
    doctor: Client, patient: Client, make_client: MakeClient, tabs: Callable[[Client], Tab]
) -> None:
    cid = await connect(doctor, patient)
    other_doctor, other_patient = make_client(), make_client()
    await other_doctor.register(
        email="o@example.fr",
        first_name="Paul",
        last_name="Roux",
        role="doctor",
        rpps=valid_rpps(72),
    )
    await other_patient.register(email="op@example.fr", first_name="Olga", last_name="P")
    cid2 = await connect(other_doctor, other_patient)
    call1 = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    call2 = (await other_doctor.post(f"/api/conversations/{cid2}/calls", {})).body
    d, p, od = tabs(doctor), tabs(patient), tabs(other_doctor)
    for tab in (d, p, od):
        await tab.connect()
    d_peer = (await join(d, call1["id"]))["peer_id"]
    await join(p, call1["id"])
    od_peer = (await join(od, call2["id"]))["peer_id"]
    # An outsider cannot join, and gets the same answer as for an unknown call.
    refused = await join(od, call1["id"])
    assert refused == {
        "ok": False,
        "type": "https://teleconsult.example/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "Appel introuvable.",
    }
    unknown = await join(od, "0" * 32)
    assert unknown == refused
    # A peer of call 2 cannot signal a peer of call 1, whichever call id it names.
    for call_id in (call1["id"], call2["id"]):
        sent = await od.sio.call(
            "call:signal",
            {"call_id": call_id, "to": d_peer, "description": {"type": "offer", "sdp": "x"}},
            timeout=5,
        )
        assert sent["ok"] is False and sent["status"] == 404
    bad = await od.sio.call("call:signal", {"call_id": call2["id"], "to": od_peer}, timeout=5)
    assert bad["ok"] is False and bad["status"] == 422
    # Sentinels, sent after everything refused above: once they arrive, anything misrouted
    # would have arrived before them.
    p_peer = next(e["peer_id"] for e in d.events["call:peer-joined"])
    sentinel = {"type": "offer", "sdp": "sentinel"}
    sent = await p.sio.call(
        "call:signal", {"call_id": call1["id"], "to": d_peer, "description": sentinel}, timeout=5
    )
    assert sent["ok"] is True
    op = tabs(other_patient)
    await op.connect()
    assert (await join(op, call2["id"]))["ok"]
    [signal] = await d.wait_for("call:signal")
    [joined] = await od.wait_for("call:peer-joined")
    assert signal["from"] == p_peer and signal["description"] == sentinel
    assert joined["call_id"] == call2["id"]
    # The other call's ring never reached our doctor or patient.
    assert all(r["call_id"] == call1["id"] for r in p.events.get("call:ring", []))


async def both_in_a_call(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> tuple[dict[str, Any], Tab, Tab, str]:
    """A call the doctor and then the patient joined, each from a tab: (the call, the doctor's
    tab, the patient's tab, the patient's peer id)."""
    cid = await connect(doctor, patient)
    call = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    d, p = tabs(doctor), tabs(patient)
    await d.connect()
    await p.connect()
    await join(d, call["id"])
    return call, d, p, (await join(p, call["id"]))["peer_id"]


async def test_disconnect_counts_as_leaving(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    call, d, p, p_peer = await both_in_a_call(doctor, patient, tabs)
    await p.close()  # the tab is closed or the phone loses its network
    [left] = await d.wait_for("call:peer-left")
    assert left["peer_id"] == p_peer
    shown = (await doctor.get(f"/api/calls/{call['id']}")).body
    assert [x["left_at"] is not None for x in shown["participants"]] == [False, True]
    assert [e["kind"] for e in shown["timeline"]] == ["created", "joined", "joined", "left"]


async def test_waiting_room_then_ready(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    """The device check joins "waiting": the others see who is arriving, the call record says
    when they came in, and a socket that is in no call cannot declare itself ready."""
    cid = await connect(doctor, patient)
    d, p = tabs(doctor), tabs(patient)
    await d.connect()
    await p.connect()
    call_id = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body["id"]
    first = await join(d, call_id)
    assert first["ok"]
    outsider_ready = await p.sio.call("call:ready", {"call_id": call_id}, timeout=5)
    assert outsider_ready["ok"] is False and outsider_ready["status"] == 404
    waiting = await p.sio.call("call:join", {"call_id": call_id, "waiting": True}, timeout=5)
    assert waiting["ok"] and waiting["peers"][0]["waiting"] is False
    [joined] = await d.wait_for("call:peer-joined")
    assert joined["peer_id"] == waiting["peer_id"] and joined["waiting"] is True
    record = (await doctor.get(f"/api/calls/{call_id}")).body
    assert record["status"] == "ringing"  # nobody has come in with the doctor yet
    mine = next(x for x in record["participants"] if x["peer_id"] == waiting["peer_id"])
    assert mine["joined_at"] and mine["ready_at"] is None
    # The doctor's page reloads: its new socket takes the old one's place, and is told the
    # patient is still arriving.
    second_tab = tabs(doctor)
    await second_tab.connect()
    seen = await join(second_tab, call_id)
    assert {x["peer_id"]: x["waiting"] for x in seen["peers"]}[waiting["peer_id"]] is True
    assert (await p.sio.call("call:ready", {"call_id": call_id}, timeout=5)) == {"ok": True}
    [ready] = await second_tab.wait_for("call:peer-ready")
    assert ready == {"call_id": call_id, "peer_id": waiting["peer_id"]}
    record = (await doctor.get(f"/api/calls/{call_id}")).body
    mine = next(x for x in record["participants"] if x["peer_id"] == waiting["peer_id"])
    assert mine["ready_at"] and record["status"] == "active"
    kinds = [e["kind"] for e in record["timeline"] if e["peer_id"] == waiting["peer_id"]]
    assert kinds == ["waiting", "joined"]
    # Ready twice changes nothing; joining again from the same socket is the same peer.
    assert (await p.sio.call("call:ready", {"call_id": call_id}, timeout=5)) == {"ok": True}
    assert (await join(p, call_id))["peer_id"] == waiting["peer_id"]
    record = (await doctor.get(f"/api/calls/{call_id}")).body
    kinds = [e["kind"] for e in record["timeline"]]
    assert kinds.count("joined") == 3 and kinds.count("replaced") == 1  # the reload
    assert [x["user"]["role"] for x in record["participants"]] == ["doctor", "patient"]


async def test_the_sfu_peer_offers_and_refuses_what_it_cannot_use(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    cid = await connect(doctor, patient)
    d = tabs(doctor)
    await d.connect()
    sfu_call = (await doctor.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})).body
    joined = await join(d, sfu_call["id"])
    assert joined["ok"] and joined["mode"] == "sfu"
    # The server offers the page its connection: microphone and camera to receive.
    [offer] = await d.wait_for("call:signal")
    assert offer["from"] == "sfu" and offer["description"]["type"] == "offer"
    assert offer["description"]["sdp"].count("a=recvonly") == 2

    def signal(body: dict[str, Any]) -> Any:
        return d.sio.call(
            "call:signal", {"call_id": sfu_call["id"], "to": "sfu", **body}, timeout=5
        )

    garbage = await signal({"description": {"type": "answer", "sdp": "not sdp"}})
    assert garbage["ok"] is False and garbage["status"] == 422
    bad_candidate = await signal({"candidate": {"candidate": "candidate:nonsense", "sdpMid": "0"}})
    assert bad_candidate["ok"] is False and bad_candidate["status"] == 422
    # Still usable after the refusals: a well-formed end of candidates is taken.
    assert await signal({"candidate": None}) == {"ok": True}

    # In a peer-to-peer call, nobody answers to "sfu".
    await doctor.post(f"/api/calls/{sfu_call['id']}/end")
    p2p = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    assert (await join(d, p2p["id"]))["mode"] == "p2p"
    refused = await d.sio.call(
        "call:signal",
        {"call_id": p2p["id"], "to": "sfu", "description": {"type": "offer", "sdp": "v=0"}},
        timeout=5,
    )
    assert refused["ok"] is False and refused["status"] == 404


async def test_an_offer_sent_with_the_join_goes_to_the_first_one_in_the_call(
    doctor: Client, patient: Client, make_client: MakeClient, tabs: Callable[[Client], Tab]
) -> None:
    """The page prepares its connection while it loads and sends the offer with its join: the
    server hands it to the first participant in the call who is not in the device check, after
    telling them who joined, and says to whom in the reply."""
    cid = await connect(doctor, patient)
    nurse = make_client()
    await nurse.register(
        email="n@example.fr", first_name="Nina", last_name="Nurse", role="nurse", rpps=valid_rpps(9)
    )
    call_id = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body["id"]
    await doctor.post(
        f"/api/calls/{call_id}/invite-nurse",
        {"nurse_id": nurse.user["id"]},  # type: ignore[index]
    )
    d, p, n = tabs(doctor), tabs(patient), tabs(nurse)
    for tab in (d, p, n):
        await tab.connect()
    offer = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}
    # Alone in the call: nobody to hand it to (the page closes that connection).
    first = await d.sio.call("call:join", {"call_id": call_id, "offer": offer}, timeout=5)
    assert first["ok"] and first["offered_to"] is None
    # The patient, still in the device check, gets it to the doctor.
    came = await p.sio.call(
        "call:join", {"call_id": call_id, "waiting": True, "offer": offer}, timeout=5
    )
    assert came["offered_to"] == first["peer_id"]
    [joined] = await d.wait_for("call:peer-joined")
    [signal] = await d.wait_for("call:signal")
    assert joined["peer_id"] == came["peer_id"]
    assert signal == {"call_id": call_id, "from": came["peer_id"], "description": offer}
    # The nurse's goes to the one in the call, not to the patient still checking.
    nurse_came = await n.sio.call(
        "call:join", {"call_id": call_id, "waiting": True, "offer": offer}, timeout=5
    )
    assert nurse_came["offered_to"] == first["peer_id"]
    to_first = (await d.wait_for("call:signal", 2))[1]
    assert to_first["from"] == nurse_came["peer_id"] and to_first["description"] == offer
    assert "call:signal" not in p.events
    # An offer that is not one is refused with the reason (in French, as over HTTP), and
    # nobody joins.
    for bad, why in (
        ({"type": "answer", "sdp": "v=0"}, "offer.type : valeur non acceptée"),
        ({"type": "offer", "sdp": ""}, "offer.sdp : ne peut pas être vide"),
        ({"type": "offer"}, "offer.sdp : champ obligatoire"),
    ):
        refused = await p.sio.call("call:join", {"call_id": call_id, "offer": bad}, timeout=5)
        assert refused["ok"] is False and refused["status"] == 422
        assert why in refused["detail"], refused
    record = (await doctor.get(f"/api/calls/{call_id}")).body
    assert len(record["participants"]) == 3


async def test_an_sfu_call_ignores_an_offer_sent_with_the_join(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    cid = await connect(doctor, patient)
    d, p = tabs(doctor), tabs(patient)
    await d.connect()
    await p.connect()
    call_id = (await doctor.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})).body["id"]
    assert (await join(d, call_id))["mode"] == "sfu"
    offer = {"type": "offer", "sdp": "v=0\r\n"}
    came = await p.sio.call("call:join", {"call_id": call_id, "offer": offer}, timeout=5)
    assert came["ok"] and came["mode"] == "sfu" and came["offered_to"] is None
    # The doctor hears from the server (its SFU offers), never the patient's offer.
    await d.wait_for("call:peer-joined")
    # The patient's offer, were it passed on, would leave during the join, before the server's
    # own offer (made after the join's answer): once that arrives, nothing else came first.
    await d.wait_for("call:signal", within=10)
    assert all(e["from"] == "sfu" for e in d.events["call:signal"])


async def test_a_page_that_leaves_and_closes_at_once_is_announced(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab], monkeypatch: Any
) -> None:
    """ "Quitter", then the page goes: its socket may be gone before the leave's handler is done
    (and the disconnect found nothing to do, the peer having left); the others must still be
    told. The socket is closed right after the leave is recorded, every time."""
    call, d, p, p_peer = await both_in_a_call(doctor, patient, tabs)
    recorded = service.leave

    async def leave_then_close(db: Any, services: Any, peer: Any) -> bool:
        empty = await recorded(db, services, peer)
        if peer.id == p_peer:
            await p.close()
            await asyncio.sleep(0.2)  # its disconnect is handled meanwhile
        return empty

    monkeypatch.setattr(service, "leave", leave_then_close)
    await p.sio.emit("call:leave", {"call_id": call["id"]})
    [left] = await d.wait_for("call:peer-left")
    assert left["peer_id"] == p_peer


async def test_check_and_media_reports_are_checked(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    """A page's device check and media state: only from a peer of the call, only in the
    contract's shape, and the check reaches the professionals, never another patient's page."""
    call, d, p, p_peer = await both_in_a_call(doctor, patient, tabs)
    check = {"camera": "denied", "microphone": "ok", "network": {"rtt_ms": 40, "relay": "ok"}}
    outsider = tabs(patient)
    await outsider.connect()  # the patient's other tab, not in the call
    for event, body in (
        ("call:check", {"call_id": call["id"], "check": check}),
        ("call:media", {"call_id": call["id"], "camera": False, "microphone": True}),
    ):
        refused = await outsider.sio.call(event, body, timeout=5)
        assert refused["ok"] is False and refused["status"] == 404, refused
    bad = await p.sio.call(
        "call:check", {"call_id": call["id"], "check": {**check, "camera": "broken"}}, timeout=5
    )
    assert bad["ok"] is False and bad["status"] == 422
    assert "check.camera : valeur non acceptée" in bad["detail"]
    wrong = await p.sio.call("call:media", {"call_id": call["id"], "camera": "no"}, timeout=5)
    assert wrong["ok"] is False and wrong["status"] == 422
    assert await p.sio.call("call:check", {"call_id": call["id"], "check": check}, timeout=5) == {
        "ok": True
    }
    [seen] = await d.wait_for("call:peer-check")
    assert seen["peer_id"] == p_peer and seen["check"]["camera"] == "denied"
    assert any("cadenas" in line for line in seen["check"]["problems"])
    assert "call:peer-check" not in p.events
