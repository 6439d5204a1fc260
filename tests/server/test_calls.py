"""Calls over HTTP: start, ring, join link, nurse, end, ICE servers with TURN credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestServer

from server.calls.turn import ice_servers
from server.clock import FakeClock
from tests.helpers import Client, connect, valid_rpps

MakeClient = Callable[[], Client]


async def test_doctor_starts_a_call_and_the_link_is_posted(doctor: Client, patient: Client) -> None:
    cid = await connect(doctor, patient)
    reply = await doctor.post(f"/api/conversations/{cid}/calls", {"mode": "p2p"})
    assert reply.status == 201, reply
    call = reply.body
    assert call["status"] == "ringing" and call["mode"] == "p2p"
    assert call["join_url"] == f"http://teleconsult.test/c/{call['id']}"
    [message] = (await patient.get(f"/api/conversations/{cid}/messages")).body["items"]
    assert call["join_url"] in message["body"]
    again = await doctor.post(f"/api/conversations/{cid}/calls", {})
    assert again.body["id"] == call["id"]  # a second click joins the same call
    shown = await patient.get(f"/api/calls/{call['id']}")
    assert (
        shown.status == 200 and shown.body["conversation"]["practitioner"]["last_name"] == "Martin"
    )
    assert [e["kind"] for e in shown.body["timeline"]] == ["created"]


async def test_who_may_start_see_and_end(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    assert (await patient.post(f"/api/conversations/{cid}/calls", {})).status == 403
    call = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    stranger = make_client()
    await stranger.register(email="s@example.fr", first_name="S", last_name="S")
    for path in (f"/api/calls/{call['id']}", f"/api/calls/{call['id']}/ice-servers"):
        reply = await stranger.get(path)
        assert reply.status == 404 and reply.body["detail"] == "Appel introuvable."
    assert (await stranger.post(f"/api/calls/{call['id']}/end")).status == 404
    assert (await patient.post(f"/api/calls/{call['id']}/end")).status == 403
    ended = await doctor.post(f"/api/calls/{call['id']}/end")
    assert ended.status == 200 and ended.body["status"] == "ended"
    bad = await doctor.post(f"/api/conversations/{cid}/calls", {"mode": "carrier-pigeon"})
    assert bad.status == 422
    sfu = await doctor.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})
    assert sfu.status == 201 and sfu.body["mode"] == "sfu"


async def test_sfu_calls_are_refused_where_the_sfu_is_off(
    start_server: Callable[..., Any], client_of: Callable[[TestServer], Client]
) -> None:
    server = await start_server(sfu=False)
    doctor, patient = client_of(server), client_of(server)
    await doctor.register(
        email="d@example.fr", first_name="D", last_name="D", role="doctor", rpps=valid_rpps(5)
    )
    await patient.register(email="p@example.fr", first_name="P", last_name="P")
    cid = await connect(doctor, patient)
    refused = await doctor.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})
    assert refused.status == 422 and "TC_SFU=off" in refused.body["detail"]
    assert (await doctor.post(f"/api/conversations/{cid}/calls", {"mode": "p2p"})).status == 201


async def test_nurse_invited_can_join(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    nurse = make_client()
    await nurse.register(
        email="n@example.fr",
        first_name="Nina",
        last_name="Nurse",
        role="nurse",
        rpps=valid_rpps(70),
    )
    call = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    assert (await nurse.get(f"/api/calls/{call['id']}")).status == 404
    invited = await doctor.post(
        f"/api/calls/{call['id']}/invite-nurse",
        {"nurse_id": nurse.user["id"], "assistance": "in_room"},
    )  # type: ignore[index]
    assert invited.status == 200 and invited.body["assistance"] == "in_room"
    assert (await nurse.get(f"/api/calls/{call['id']}")).status == 200
    assert (await nurse.get(f"/api/conversations/{cid}")).status == 200
    not_nurse = await doctor.post(
        f"/api/calls/{call['id']}/invite-nurse", {"nurse_id": patient.user["id"]}
    )  # type: ignore[index]
    assert not_nurse.status == 404


def test_turn_credentials_follow_coturn_rest_api(clock: FakeClock) -> None:
    servers = ice_servers(("turn:turn.example.fr:3478?transport=udp",), "s3cret", "u1", clock.now())
    assert servers[0] == {"urls": ["stun:turn.example.fr:3478"]}
    turn = servers[1]
    expiry, user = turn["username"].split(":")
    assert user == "u1" and int(expiry) == int((clock.now() + timedelta(hours=4)).timestamp())
    expected = base64.b64encode(
        hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()
    ).decode()
    assert turn["credential"] == expected
    assert ice_servers((), "s3cret", "u1", clock.now()) == []


async def test_ice_servers_route(
    start_server: Callable[..., Any], client_of: Callable[[TestServer], Client]
) -> None:
    server = await start_server(turn_urls=("turn:127.0.0.1:3478",), turn_secret="k")
    doctor, patient = client_of(server), client_of(server)
    await doctor.register(
        email="d@example.fr", first_name="D", last_name="D", role="doctor", rpps=valid_rpps(71)
    )
    await patient.register(email="p@example.fr", first_name="P", last_name="P")
    cid = await connect(doctor, patient)
    call = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    servers = (await patient.get(f"/api/calls/{call['id']}/ice-servers")).body["iceServers"]
    assert servers[1]["urls"] == ["turn:127.0.0.1:3478"]
    assert servers[1]["username"].endswith(":" + patient.user["id"])  # type: ignore[index]


async def test_calls_of_the_day(
    doctor: Client, patient: Client, make_client: MakeClient, clock: FakeClock
) -> None:
    cid = await connect(doctor, patient)
    nurse = make_client()
    await nurse.register(
        email="n2@example.fr",
        first_name="Nina",
        last_name="Nurse",
        role="nurse",
        rpps=valid_rpps(73),
    )
    call = (await doctor.post(f"/api/conversations/{cid}/calls", {})).body
    assert (await nurse.get("/api/calls")).body["items"] == []
    await doctor.post(
        f"/api/calls/{call['id']}/invite-nurse",
        {"nurse_id": nurse.user["id"], "assistance": "in_room"},
    )  # type: ignore[index]
    [listed] = (await nurse.get("/api/calls")).body["items"]
    assert listed["id"] == call["id"] and listed["assistance"] == "in_room"
    assert listed["patient"]["last_name"] == "Durand"
    assert [c["id"] for c in (await doctor.get("/api/calls")).body["items"]] == [call["id"]]
    stranger = make_client()
    await stranger.register(email="s2@example.fr", first_name="S", last_name="S")
    assert (await stranger.get("/api/calls")).body["items"] == []
    clock.advance(timedelta(days=1))
    await nurse.login()
    assert (await nurse.get("/api/calls")).body["items"] == []  # yesterday's calls are gone
