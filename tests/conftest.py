"""Fixtures: each test gets a fresh database (a SQLite file, or a PostgreSQL schema), a fake clock
and a running server; ``make_client`` opens one browser-like client per person."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from server.app import Overrides, create_app
from server.clock import FakeClock
from server.settings import PasswordHashing, Settings
from tests.helpers import Client, valid_rpps
from tests.signaling.sockets import Tab

pytest_plugins = ["tests.mail", "tests.media.codecs", "tests.push_service", "tests.sms_gateway"]

PG_DSN = os.environ.get("TC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PG_URL = PG_DSN.replace("postgresql://", "postgresql+asyncpg://", 1)

# Cheap argon2 parameters keep the suite fast; tests/server/test_passwords.py checks the real
# defaults (RFC 9106) separately.
TEST_HASHING = PasswordHashing(time_cost=1, memory_cost_kib=1024, parallelism=1)

_pg_available: bool | None = None


async def _postgres_available() -> bool:
    global _pg_available
    if _pg_available is None:
        try:
            conn = await asyncio.wait_for(asyncpg.connect(PG_DSN), timeout=3)
            await conn.close()
            _pg_available = True
        except (OSError, asyncpg.PostgresError, TimeoutError):
            _pg_available = False
    return _pg_available


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str | None]]:
    """(SQLAlchemy URL, PostgreSQL schema or None). PostgreSQL tests skip only where no server
    answers at 127.0.0.1:5432; CI has one."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}", None
        return
    if not await _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but does not answer at {PG_DSN}")
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    try:
        yield PG_URL, schema
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            # A disconnect handler may still be finishing in the schema: retry a deadlock.
            for attempt in range(5):
                try:
                    await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
                    break
                except asyncpg.DeadlockDetectedError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await conn.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, database: tuple[str, str | None]) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database[0],
        public_url="http://teleconsult.test",
        secret_key="test-secret",
        password_hashing=TEST_HASHING,
        delivery_worker=False,
    )


ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
def start_server(
    aiohttp_server: Any, clock: FakeClock, database: tuple[str, str | None], settings: Settings
) -> ServerFactory:
    async def start(port: int | None = None, host: str = "127.0.0.1", **changes: Any) -> TestServer:
        app = create_app(
            replace(settings, **changes), Overrides(clock=clock, db_schema=database[1])
        )
        server: TestServer = await aiohttp_server(app, host=host, port=port)
        return server

    return start


@pytest.fixture
async def server(start_server: ServerFactory) -> TestServer:
    return await start_server()


@pytest.fixture
async def client_of() -> AsyncIterator[Callable[[TestServer], Client]]:
    """A new client of any server; all are closed at the end of the test, even a failed one."""
    clients: list[Client] = []

    def make(server: TestServer) -> Client:
        client = Client(server)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def make_client(
    server: TestServer, client_of: Callable[[TestServer], Client]
) -> Callable[[], Client]:
    return lambda: client_of(server)


@pytest.fixture
async def doctor(make_client: Callable[[], Client]) -> Client:
    client = make_client()
    await client.register(
        email="claire.martin@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(1),
    )
    return client


@pytest.fixture
async def patient(make_client: Callable[[], Client]) -> Client:
    client = make_client()
    await client.register(email="eloise.durand@example.fr", first_name="Éloïse", last_name="Durand")
    return client


@pytest.fixture
async def tabs(server: TestServer) -> AsyncIterator[Callable[[Client], Tab]]:
    """Socket.io tabs of clients, closed before the server is (the fixture depends on it)."""
    opened: list[Tab] = []

    def open_tab(client: Client) -> Tab:
        tab = Tab(client)
        opened.append(tab)
        return tab

    yield open_tab
    for tab in opened:
        await tab.close()


@pytest.fixture
def outbox(settings: Settings) -> Path:
    return settings.outbox_dir


REDIS_URL = os.environ.get("TC_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_available() -> None:
    """The real Redis: required in CI, skipped with the reason elsewhere."""
    try:
        client = aioredis.from_url(REDIS_URL)
        await asyncio.wait_for(client.ping(), 3)
        await client.aclose()
    except (OSError, TimeoutError, aioredis.RedisError):
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI but does not answer at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
