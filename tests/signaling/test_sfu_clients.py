"""SFU calls hold for any standard WebRTC client, not only for browsers (which ask for keyframes
on their own and hide what the server forgets)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.helpers import Client, connect, valid_rpps
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
