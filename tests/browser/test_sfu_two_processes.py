"""An SFU call whose participants' sockets are on two app processes sharing the real Redis: the
call's SFU runs in one of them, the other hands it its page's signals, and each page decodes
the other's video. Both processes show the call's figures, and the leave through the second
process is recorded with what was forwarded of that participant. And when the process running
the call dies, the call goes on in the other one."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from server.calls.keys import SFU_CALLS
from tests.browser.pages import in_contact, signed_in_page
from tests.browser.test_sfu_call import FRESH_VIDEO_IN, streams_from
from tests.conftest import REDIS_URL
from tests.helpers import Client
from tests.mail import free_port
from tests.processes import Remote, serve, shared_install, stop


async def test_an_sfu_call_across_two_processes(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    redis_available: None,
) -> None:
    bases, servers = [], []
    # One install of its own in the shared Redis (rate-limit counters are keyed by the secret).
    secret = f"test-{uuid.uuid4().hex}"
    for _ in range(2):  # one database (a SQLite file), one Redis, two applications
        port = free_port()
        bases.append(f"http://127.0.0.1:{port}")
        servers.append(
            await start_server(
                port=port, public_url=bases[-1], redis_url=REDIS_URL, secret_key=secret
            )
        )
    doctor_api, patient_api = client_of(servers[0]), client_of(servers[1])
    cid = await in_contact(doctor_api, patient_api)
    created = await doctor_api.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})
    assert created.status == 201
    call_id = created.body["id"]

    # The doctor joins through the first process, which claims the call; the patient's page is
    # served, and its socket connected, by the second.
    doctor = await signed_in_page(browser, bases[0], "claire.martin@example.fr")
    patient = await signed_in_page(browser, bases[1], "eloise@example.fr", phone=True)
    await doctor.goto(f"{bases[0]}/c/{call_id}")
    await doctor.get_by_role("button", name="Rejoindre la consultation").click()
    routers = [server.app[SFU_CALLS] for server in servers]
    deadline = time.monotonic() + 10
    while routers[0].local.room(call_id) is None:
        assert time.monotonic() < deadline, "the first process did not start the call's SFU"
        await doctor.wait_for_timeout(100)
    await patient.goto(f"{bases[1]}/c/{call_id}")
    await patient.get_by_role("button", name="Rejoindre la consultation").click()

    for page in (doctor, patient):
        seen = await streams_from(page, 1)
        assert seen["connections"] == 1
    room = routers[0].local.room(call_id)
    assert room is not None and len(room.participants) == 2
    assert routers[1].local.room(call_id) is None  # nothing of it runs in the second process

    # The figures, asked of either process, are the one SFU's.
    for api in (doctor_api, patient_api):
        shown = await api.get(f"/api/calls/{call_id}/forwarding")
        assert shown.status == 200 and len(shown.body["tracks"]) == 4
        assert all(t["frames"] > 10 for t in shown.body["tracks"] if t["kind"] == "video")

    # The patient leaves through the second process: the SFU ends her tracks, and the record
    # keeps what was forwarded of her.
    await patient.get_by_role("button", name="Quitter").click()
    await patient.get_by_role("dialog").get_by_role("button", name="Quitter l'appel").click()
    await expect(doctor.locator("#remotes .remote")).to_have_count(0)
    deadline = time.monotonic() + 10
    while len(await routers[0].stats(call_id)) != 2:
        assert time.monotonic() < deadline, "her tracks were not ended"
        await doctor.wait_for_timeout(100)
    record = (await doctor_api.get(f"/api/calls/{call_id}")).body
    forwarded = [e for e in record["timeline"] if e["kind"] == "forwarded"]
    assert len(forwarded) == 1 and len(forwarded[0]["data"]["tracks"]) == 2
    assert all(t["frames"] > 10 for t in forwarded[0]["data"]["tracks"] if t["kind"] == "video")

    # The doctor's page closes: her socket is gone, and so is the call's SFU side.
    await doctor.context.close()
    deadline = time.monotonic() + 10
    while routers[0].local.room(call_id) is not None:
        assert time.monotonic() < deadline, "the doctor's SFU side was not closed"
        await patient.wait_for_timeout(100)


class SwitchingProxy:
    """One address in front of two applications, as a load balancer: new connections go to
    ``target``, which the test switches when the first application stops."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()


async def test_an_sfu_call_goes_on_when_the_process_running_it_dies(
    browser: Browser, tmp_path: Path, redis_available: None
) -> None:
    """Two ``teleconsult serve`` processes. The doctor's page reaches them through one address
    (A, then B once A is gone, as behind a load balancer); the patient's is on B all along. A
    runs the call's SFU and is killed: the doctor's socket comes back through B, B takes the
    call over, the patient's page (whose socket never dropped) is told to join again, and both
    decode each other on new connections, without a reload."""
    env = await shared_install(tmp_path / "data", REDIS_URL)
    ports = free_port(), free_port()
    proxy = SwitchingProxy(ports[0])
    await proxy.start()
    front, direct = f"http://127.0.0.1:{proxy.port}", f"http://127.0.0.1:{ports[1]}"
    procs = [
        await serve(ports[0], {**env, "TC_PUBLIC_URL": front}),
        await serve(ports[1], {**env, "TC_PUBLIC_URL": direct}),
    ]
    doctor_api = Client(Remote(proxy.port, env))  # type: ignore[arg-type]
    patient_api = Client(Remote(ports[1], env))  # type: ignore[arg-type]
    try:
        cid = await in_contact(doctor_api, patient_api)
        created = await doctor_api.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})
        call_id = created.body["id"]
        doctor = await signed_in_page(browser, front, "claire.martin@example.fr")
        patient = await signed_in_page(browser, direct, "eloise@example.fr", phone=True)
        await doctor.goto(f"{front}/c/{call_id}")
        await doctor.get_by_role("button", name="Rejoindre la consultation").click()
        # The doctor's join, through A, made A the call's SFU before the patient comes.
        await doctor.wait_for_function(
            "window.__tc.timeline.some(([name]) => name === 'link-connected')"
        )
        await patient.goto(f"{direct}/c/{call_id}")
        await patient.get_by_role("button", name="Rejoindre la consultation").click()
        for page in (doctor, patient):
            await streams_from(page, 1)
            await page.evaluate("() => { window.__tc.peers.get('sfu').pc.__before = true; }")

        # A dies; what comes to the front address now goes to B.
        proxy.target = ports[1]
        procs[0].kill()
        await procs[0].wait()
        for page in (doctor, patient):
            deadline = time.monotonic() + 30
            while await page.evaluate(FRESH_VIDEO_IN) < 10:
                assert time.monotonic() < deadline, "the picture did not come back through B"
                await asyncio.sleep(0.3)
        # B runs the call's SFU now: its figures, asked of B, are of both participants' tracks.
        shown = await patient_api.get(f"/api/calls/{call_id}/forwarding")
        assert shown.status == 200 and len(shown.body["tracks"]) == 4
    finally:
        for context in browser.contexts:
            await context.close()
        await doctor_api.close()
        await patient_api.close()
        await proxy.close()
        for proc in procs:
            await stop(proc)
