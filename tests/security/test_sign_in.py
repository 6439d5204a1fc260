"""Sign-in throttling as an attacker meets it: concurrency, strangers, proxies, several
processes (NIST SP 800-63B §5.2.2: throttle, never a lockout a stranger can impose)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestServer
from sqlalchemy import select

from server.models import AuditEvent
from tests.conftest import REDIS_URL
from tests.helpers import PASSWORD, Client

MakeClient = Callable[[], Client]
WRONG = "x" * 12


def login(email: str, password: str, address: str | None = None) -> dict[str, Any]:
    headers = {"X-Forwarded-For": address} if address else {}
    return {"json": {"email": email, "password": password}, "headers": headers}


async def attempt(client: Client, email: str, password: str, address: str | None = None) -> int:
    reply = await client.request("POST", "/api/auth/login", **login(email, password, address))
    return reply.status


async def test_concurrent_wrong_passwords_are_counted_before_they_are_checked(
    make_client: MakeClient, patient: Client
) -> None:
    """24 concurrent wrong passwords were all checked (the limit is 5): each was compared
    with a count taken before any of them was added."""
    assert patient.user is not None
    email = patient.user["email"]
    attacker = make_client()
    statuses = await asyncio.gather(*(attempt(attacker, email, WRONG) for _ in range(24)))
    assert statuses.count(401) == 5 and statuses.count(429) == 19
    async with patient.services.sessionmaker() as db:
        actions = list(await db.scalars(select(AuditEvent.action)))
    assert actions.count("auth.login_failed") == 5


async def test_a_stranger_elsewhere_never_locks_the_owner_out(
    start_server: Callable[..., Any], client_of: Callable[[TestServer], Client]
) -> None:
    server = await start_server(trusted_proxies=("127.0.0.1",))
    owner, stranger = client_of(server), client_of(server)
    await owner.register(email="owner@example.fr", first_name="A", last_name="B")
    home, elsewhere = "198.51.100.7", "203.0.113.9"
    assert await attempt(owner, "owner@example.fr", PASSWORD, home) == 200
    for _ in range(5):
        assert await attempt(stranger, "owner@example.fr", WRONG, elsewhere) == 401
    blocked = await stranger.request(
        "POST", "/api/auth/login", **login("owner@example.fr", PASSWORD, elsewhere)
    )
    assert blocked.status == 429
    # The page says for how long, and what to do.
    assert "réessayez dans 15 minutes" in blocked.body["detail"]
    assert int(blocked.headers["Retry-After"]) == 15 * 60
    # The owner, from her own address, signs in at once.
    assert await attempt(owner, "owner@example.fr", PASSWORD, home) == 200


async def test_delays_grow_with_repeated_failures(
    start_server: Callable[..., Any], client_of: Callable[[TestServer], Client], clock: Any
) -> None:
    server = await start_server(trusted_proxies=("127.0.0.1",))
    owner, guesser = client_of(server), client_of(server)
    await owner.register(email="owner@example.fr", first_name="A", last_name="B")
    waits = []
    for _ in range(3):
        while (
            reply := await guesser.request(
                "POST", "/api/auth/login", **login("owner@example.fr", WRONG, "203.0.113.9")
            )
        ).status == 401:
            pass
        assert reply.status == 429
        waits.append(int(reply.headers["Retry-After"]))
        clock.advance(timedelta(seconds=waits[-1]))
    # 5 in 15 minutes, then 10 in the hour, then 20 in the day: each pause is longer.
    assert waits[0] == 15 * 60 and waits[1] > waits[0] and waits[2] > waits[1], waits


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    make_client: MakeClient, patient: Client
) -> None:
    """Without TC_TRUSTED_PROXIES, a client that writes X-Forwarded-For itself does not get a
    fresh address (and fresh attempts) with each request."""
    assert patient.user is not None
    attacker = make_client()
    statuses = [
        await attempt(attacker, patient.user["email"], WRONG, f"203.0.113.{n}") for n in range(8)
    ]
    assert statuses == [401] * 5 + [429] * 3


async def test_with_redis_every_process_counts_in_the_same_place(
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    redis_available: None,
) -> None:
    """Counters lived in each process's memory: N processes gave N times the attempts."""
    shared = {"redis_url": REDIS_URL, "secret_key": f"test-{uuid.uuid4().hex}"}
    first, second = await start_server(**shared), await start_server(**shared)
    owner = client_of(first)
    await owner.register(email="owner@example.fr", first_name="A", last_name="B")
    on_first, on_second = client_of(first), client_of(second)
    statuses = []
    for n in range(8):
        statuses.append(await attempt(on_first if n % 2 else on_second, "owner@example.fr", WRONG))
    assert statuses == [401] * 5 + [429] * 3
