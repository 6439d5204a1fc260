"""Two real server processes sharing one database and the real Redis at 127.0.0.1:6379: a message
posted through one process reaches a socket connected to the other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL
from tests.helpers import Client, connect, valid_rpps
from tests.mail import free_port
from tests.processes import Remote, serve, shared_install, stop
from tests.signaling.sockets import Tab


@pytest.fixture
def database() -> tuple[str, None]:  # the two processes share one SQLite file (below)
    return "", None


@pytest.fixture
async def processes(tmp_path: Path, redis_available: None) -> AsyncIterator[tuple[Remote, Remote]]:
    env = await shared_install(tmp_path / "data", REDIS_URL)
    ports = free_port(), free_port()
    procs = [await serve(port, env) for port in ports]
    try:
        yield Remote(ports[0], env), Remote(ports[1], env)
    finally:
        # A clean stop: its own shutdown, well before its watchdog (20 s, exit status 1).
        for proc in procs:
            status = await stop(proc)
            assert status == 0, f"a server process stopped with status {status}"


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        await client.close()


@pytest.mark.timeout(90)
async def test_message_crosses_processes_through_redis(
    processes: tuple[Remote, Remote], clients: list[Client]
) -> None:
    a, b = processes  # each answering /healthz already
    doctor = Client(a)  # type: ignore[arg-type]
    patient = Client(b)  # type: ignore[arg-type]
    clients.extend([doctor, patient])
    await doctor.register(
        email="dr@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(60),
    )
    await patient.register(email="p@example.fr", first_name="Jean", last_name="Dupont")
    cid = await connect(doctor, patient)

    patient_tab = Tab(patient)  # connected to process B
    doctor_tab = Tab(doctor)  # connected to process A
    try:
        await patient_tab.connect()
        await doctor_tab.connect()
        assert (await patient_tab.subscribe(cid))["ok"]
        assert (await doctor_tab.subscribe(cid))["ok"]
        posted = await doctor.post(
            f"/api/conversations/{cid}/messages",
            {"client_id": "x1", "body": "Posté sur le processus A"},
        )
        assert posted.status == 201
        [event] = await patient_tab.wait_for("message:new", within=10)
        assert event["id"] == posted.body["id"] and event["body"] == "Posté sur le processus A"
        await patient.post(f"/api/conversations/{cid}/read", {"up_to_seq": 1})  # on B
        [read] = await doctor_tab.wait_for("message:read", within=10)
        assert read["user_id"] == patient.user["id"] and read["up_to_seq"] == 1  # type: ignore[index]
    finally:
        await patient_tab.close()
        await doctor_tab.close()


@pytest.mark.timeout(90)
async def test_signing_out_on_one_process_closes_the_sockets_on_the_other(
    processes: tuple[Remote, Remote], clients: list[Client]
) -> None:
    a, b = processes
    patient = Client(a)  # type: ignore[arg-type]
    page_on_b = Client(b)  # type: ignore[arg-type]
    clients.extend([patient, page_on_b])
    await patient.register(email="p@example.fr", first_name="Jean", last_name="Dupont")
    token = next(c.value for c in patient.session.cookie_jar if c.key == "tc_session")
    tab = Tab(page_on_b)  # the same session's socket, held by process B
    try:
        await tab.connect(cookie=token)
        assert (await patient.post("/api/auth/logout")).status == 204  # on A
        await tab.wait_closed(within=10)
        assert tab.events["session:ended"][0]["detail"] == "Vous avez été déconnecté."
    finally:
        await tab.close()
