"""SFU calls hold for any standard WebRTC client, not only for browsers (which ask for keyframes
on their own and hide what the server forgets)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from tests.helpers import Client, connect, valid_rpps
from tests.server.test_billing import record_body
from tests.signaling.aiortc_client import AiortcParticipant
from tests.signaling.sockets import Tab

MakeClient = Callable[[], Client]


async def wait_until_decoding(clients: list[AiortcParticipant], frames: int, within: float) -> None:
    async def all_decode() -> None:
        while True:
            if all(
                len(c.decoded) == len(clients) - 1 and min(c.decoded.values(), default=0) >= frames
                for c in clients
            ):
                return
            await asyncio.sleep(0.2)

    try:
        await asyncio.wait_for(all_decode(), within)
    except TimeoutError:
        raise AssertionError(
            "decoded per publisher: "
            + "; ".join(f"{c.peer_id}: {dict(c.decoded)}" for c in clients)
        ) from None


async def test_three_aiortc_clients_each_decode_the_two_others(
    doctor: Client,
    patient: Client,
    make_client: MakeClient,
    tabs: Callable[[Client], Tab],
) -> None:
    cid = await connect(doctor, patient)
    nurse = make_client()
    await nurse.register(
        email="nurse@example.fr",
        first_name="Nina",
        last_name="Nurse",
        role="nurse",
        rpps=valid_rpps(71),
    )
    call_id = (await doctor.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})).body["id"]
    invited = await doctor.post(
        f"/api/calls/{call_id}/invite-nurse",
        {"nurse_id": nurse.user["id"], "assistance": "remote"},  # type: ignore[index]
    )
    assert invited.status == 200
    clients: list[AiortcParticipant] = []
    try:
        # One second apart, as people arrive: each late subscriber must still get a keyframe
        # once its own connection is up, without asking for one.
        for who in (doctor, patient, nurse):
            tab = tabs(who)
            await tab.connect()
            client = AiortcParticipant(tab)
            clients.append(client)
            await client.join(call_id)
            await asyncio.sleep(1)
        await wait_until_decoding(clients, frames=30, within=25)
        ids = {c.peer_id for c in clients}
        for c in clients:
            assert set(c.decoded) == ids - {c.peer_id}
    finally:
        for c in clients:
            await c.close()


async def wait_for_receiver_reports(client: Client, call_id: str, within: float) -> None:
    async def reported() -> None:
        while True:
            tracks = (await client.get(f"/api/calls/{call_id}/forwarding")).body["tracks"]
            video = [t for t in tracks if t["kind"] == "video"]
            if len(video) == 2 and all(
                "packets_lost" in figures for t in video for figures in t["subscribers"].values()
            ):
                return
            await asyncio.sleep(0.2)

    await asyncio.wait_for(reported(), within)


async def sfu_rounds(call_id: str, tabs_: list[Tab], seconds: int, claim: int = 0) -> None:
    """Every 5 s of the test clock (half a second of real media), each page sends its sample
    about its one connection, the server's. ``claim``: the frames the pages say they decoded."""
    clock = tabs_[0].client.services.clock
    for step in range(seconds // 5 + 1):
        if step:
            clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
            await asyncio.sleep(1)  # frames forwarded meanwhile, even on a loaded machine
        for tab in tabs_:
            sample = {"video_in": {"frames_decoded": claim * step}, "source": "server"}
            reply = await tab.sio.call(
                "call:stats", {"call_id": call_id, "about": "sfu", "stats": sample}, timeout=5
            )
            assert reply == {"ok": True}, reply


async def test_in_sfu_calls_the_servers_figures_prove_the_video(
    doctor: Client, patient: Client, tabs: Callable[[Client], Tab]
) -> None:
    cid = await connect(doctor, patient)
    # Pages that claim 30 frames a second both ways, marking their samples as the server's,
    # with no media at all: the server forwarded nothing, so nothing is proven.
    call_id = (await doctor.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})).body["id"]
    liars = [tabs(doctor), tabs(patient)]
    for tab in liars:
        await tab.connect()
        assert (await tab.sio.call("call:join", {"call_id": call_id}, timeout=5))["ok"]
    await sfu_rounds(call_id, liars, 30, claim=150)
    assert (await doctor.get(f"/api/calls/{call_id}")).body["video_both_ways_seconds"] == 0
    refused = await doctor.post(f"/api/calls/{call_id}/billing", record_body("TCG"))
    assert refused.status == 422 and "vidéo" in refused.body["detail"]
    await doctor.post(f"/api/calls/{call_id}/end")
    for tab in liars:
        await tab.close()

    # Real media through the server, pages claiming nothing: the server's figures decide.
    call_id = (await doctor.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})).body["id"]
    clients: list[AiortcParticipant] = []
    try:
        for who in (doctor, patient):
            tab = tabs(who)
            await tab.connect()
            clients.append(AiortcParticipant(tab))
            await clients[-1].join(call_id)
        await wait_until_decoding(clients, frames=10, within=20)
        # The server counts frames once the subscriber's receiver reports on them (about once a
        # second): start when both have.
        await wait_for_receiver_reports(doctor, call_id, within=10)
        await sfu_rounds(call_id, [c.tab for c in clients], 15)
        record = (await doctor.get(f"/api/calls/{call_id}")).body
        assert record["video_both_ways_seconds"] == 15, record["video_both_ways_seconds"]
        proposal = await doctor.get(f"/api/calls/{call_id}/billing")
        assert [a["code"] for a in proposal.body["acts"]] == ["TCG"], proposal
    finally:
        for c in clients:
            await c.close()
