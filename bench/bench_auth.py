"""Login and invitation-creation throughput, and argon2id hashing time.

Each figure is printed with its ratio to a baseline measured in the same process and run: a bare
aiohttp handler answering JSON, driven by the same client at the same concurrency. The server
uses the production argon2id parameters (RFC 9106, t=3, m=64 MiB, p=4).

    .venv/bin/python bench/bench_auth.py [--database-url postgresql+asyncpg://...] [--logins 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.app import create_app
from server.http.keys import SERVICES
from server.models import User
from server.passwords import Passwords
from server.settings import Settings
from server.values import luhn_ok

PASSWORD = "bench password 123"
CONCURRENCY = int(__import__("os").environ.get("BENCH_CONCURRENCY", "8"))


def rpps(n: int) -> str:
    base = f"1{n:09d}"
    return next(base + str(k) for k in range(10) if luhn_ok(base + str(k)))


async def approve(server: TestServer, user_id: str) -> None:
    services = server.app[SERVICES]
    async with services.sessionmaker() as db:
        user = await db.get(User, user_id)
        assert user is not None
        user.approved_at = services.clock.now()
        await db.commit()


async def run_many(count: int, work: Callable[[int], Awaitable[None]]) -> float:
    """Run ``work(i)`` for i < count with CONCURRENCY workers; return operations per second."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - started)


async def argon2_ms(params: Passwords, rounds: int = 10) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await params.hash(PASSWORD)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="")
    parser.add_argument("--logins", type=int, default=60)
    parser.add_argument("--doctors", type=int, default=10)
    parser.add_argument("--invitations-per-doctor", type=int, default=40)
    args = parser.parse_args()

    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="tc-bench-")),
        database_url=args.database_url,
        public_url="http://bench.test",
        delivery_worker=False,
    )
    hashing = settings.password_hashing
    print(
        f"argon2id parameters: t={hashing.time_cost} m={hashing.memory_cost_kib} KiB "
        f"p={hashing.parallelism}; database: {settings.effective_database_url.split(':')[0]}; "
        f"client concurrency {CONCURRENCY}"
    )

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    baseline_app = web.Application()
    baseline_app.router.add_get("/ping", ping)
    baseline = TestServer(baseline_app)
    server = TestServer(create_app(settings))
    await baseline.start_server()
    await server.start_server()
    origin = {"Origin": str(server.make_url("")).rstrip("/")}
    try:
        async with aiohttp.ClientSession() as http:

            async def ping_once(_: int) -> None:
                async with http.get(baseline.make_url("/ping")) as resp:
                    assert resp.status == 200

            base_rps = await run_many(2000, ping_once)

            # Accounts: one patient per worker for the logins (a sign-in is counted before its
            # password is checked, so one account does not sign in many times at once), N
            # doctors for the invitations.
            for n in range(CONCURRENCY):
                async with (
                    aiohttp.ClientSession() as anon,
                    anon.post(
                        server.make_url("/api/auth/register"),
                        json={
                            "email": f"p{n}@bench.example.fr",
                            "password": PASSWORD,
                            "first_name": "P",
                            "last_name": "Bench",
                        },
                    ) as resp,
                ):
                    assert resp.status == 201, await resp.text()

            async def login_once(i: int) -> None:
                email = f"p{i % CONCURRENCY}@bench.example.fr"
                async with (
                    aiohttp.ClientSession() as fresh,
                    fresh.post(
                        server.make_url("/api/auth/login"),
                        json={"email": email, "password": PASSWORD},
                    ) as resp,
                ):
                    assert resp.status == 200, await resp.text()

            login_rps = await run_many(args.logins, login_once)

            doctors = []
            for n in range(args.doctors):
                session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
                async with session.post(
                    server.make_url("/api/auth/register"),
                    json={
                        "email": f"d{n}@bench.example.fr",
                        "password": PASSWORD,
                        "first_name": "D",
                        "last_name": f"N{n}",
                        "role": "doctor",
                        "rpps": rpps(n),
                    },
                ) as resp:
                    assert resp.status == 201, await resp.text()
                    # Approved as the install's administrator would.
                    await approve(server, (await resp.json())["id"])
                doctors.append(session)

            async def invite_once(i: int) -> None:
                session = doctors[i % len(doctors)]
                async with session.post(
                    server.make_url("/api/invitations"),
                    headers=origin,
                    json={
                        "first_name": "Patient",
                        "last_name": f"N{i}",
                        "email": f"p{i}@bench.example.fr",
                    },
                ) as resp:
                    assert resp.status == 201, await resp.text()

            invite_rps = await run_many(args.doctors * args.invitations_per_doctor, invite_once)
            for session in doctors:
                await session.close()
    finally:
        await server.close()
        await baseline.close()

    hash_ms = await argon2_ms(Passwords(hashing))
    print(f"baseline (bare aiohttp JSON handler): {base_rps:8.1f} req/s")
    print(
        f"login (argon2id verify + session):    {login_rps:8.1f} req/s  "
        f"ratio to baseline {login_rps / base_rps:.4f}"
    )
    print(
        f"invitation created + emailed (outbox): {invite_rps:7.1f} req/s  "
        f"ratio to baseline {invite_rps / base_rps:.4f}"
    )
    print(
        f"argon2id hash: median {hash_ms:.1f} ms  (one core's ceiling ~{1000 / hash_ms:.0f} "
        "logins/s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
