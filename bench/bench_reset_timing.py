"""Does asking for a password reset take the same time for an address with an account as for
one without? (``POST /api/auth/password-reset`` must not tell them apart, by answer or timing.)

Requests alternate between a known and an unknown address, each from its own client address
(``X-Forwarded-For`` from a trusted proxy, so the per-address limit does not interfere), and the
medians are compared: the ratio unknown/known should be close to 1 (the request path writes the
same rows either way; the message itself leaves later, from the worker).

    .venv/bin/python bench/bench_reset_timing.py [--rounds 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.app import create_app
from server.settings import PasswordHashing, Settings

CHEAP = PasswordHashing(time_cost=1, memory_cost_kib=1024, parallelism=1)


async def main(rounds: int, database_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=database_url,
            password_hashing=CHEAP,
            delivery_worker=False,  # the request path only
            trusted_proxies=("127.0.0.1",),
        )
        server = TestServer(create_app(settings))
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as http:
            await http.post(
                f"{base}/api/auth/register",
                json={
                    "email": "known@example.fr",
                    "password": "bench password 123",
                    "first_name": "Anne",
                    "last_name": "Connue",
                },
            )
            timings: dict[str, list[float]] = {"known": [], "unknown": []}
            for i in range(rounds * 2):
                which = "known" if i % 2 == 0 else "unknown"
                address = "known@example.fr" if which == "known" else f"nobody{i}@example.fr"
                headers = {"X-Forwarded-For": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"}
                began = time.perf_counter()
                async with http.post(
                    f"{base}/api/auth/password-reset", json={"email": address}, headers=headers
                ) as response:
                    await response.read()
                    assert response.status == 202, response.status
                if i >= 20:  # past the warm-up
                    timings[which].append(time.perf_counter() - began)
        await server.close()
    known = statistics.median(timings["known"]) * 1000
    unknown = statistics.median(timings["unknown"]) * 1000
    print(f"median known   {known:.2f} ms over {len(timings['known'])} requests")
    print(f"median unknown {unknown:.2f} ms over {len(timings['unknown'])} requests")
    print(f"ratio unknown/known {unknown / known:.3f} (1.000: indistinguishable)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.database_url))
