"""Upload and download of a 20 MB file through the app with files encrypted at rest
(AES-256-GCM, server/filecrypt.py), against the very same app and code path with the cipher
swapped for an identity one (the file stored in clear) — the cost of the encryption itself, as a
person sees it. Also shown: a bare aiohttp app writing the file and serving it with
``FileResponse`` (sendfile), the floor of what Python can do. Goal (issue 24): at most 1.3× the
time of the same path in clear; Python's peak allocations during the encrypted transfers stay a
few chunks, not the file's size (the upload streams from a file on disk).

    .venv/bin/python bench/bench_storage.py [--rounds 15] [--megabytes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server import filecrypt
from server.app import create_app
from server.settings import PasswordHashing, Settings

CHEAP = PasswordHashing(time_cost=1, memory_cost_kib=1024, parallelism=1)


class IdentitySealer:
    """The same layout's header, the content as is."""

    def __init__(self, ring: filecrypt.KeyRing) -> None:
        del ring

    def header(self) -> bytes:
        return filecrypt.MAGIC + bytes(filecrypt.HEADER_BYTES - 4)

    def update(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


def identity_opened(f: BinaryIO, ring: filecrypt.KeyRing) -> Iterator[bytes]:
    del ring
    filecrypt.read_header(f)
    while piece := f.read(filecrypt.CHUNK):
        yield piece


@contextlib.contextmanager
def in_clear() -> Iterator[None]:
    sealer, opened = filecrypt.Sealer, filecrypt.opened
    filecrypt.Sealer, filecrypt.opened = IdentitySealer, identity_opened  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        filecrypt.Sealer, filecrypt.opened = sealer, opened  # type: ignore[misc]


def bare_app(root: Path) -> web.Application:
    """The floor: a bare app storing in clear, served with sendfile."""
    app = web.Application(client_max_size=64 * 1024 * 1024)

    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        part = await reader.next()
        assert isinstance(part, aiohttp.BodyPartReader)
        path = root / "file"
        with path.open("wb") as out:
            while chunk := await part.read_chunk(256 * 1024):
                await asyncio.to_thread(out.write, chunk)
        return web.json_response({"id": "file"}, status=201)

    async def download(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(root / "file")

    app.router.add_post("/api/uploads", upload)
    app.router.add_get("/api/attachments/{id}", download)
    return app


async def round_trip(
    http: aiohttp.ClientSession, base: str, source: Path, size: int
) -> tuple[float, float]:
    began = time.perf_counter()
    with source.open("rb") as f:
        form = aiohttp.FormData()
        form.add_field("file", f, filename="scan.pdf", content_type="application/pdf")
        async with http.post(f"{base}/api/uploads", data=form, headers={"Origin": base}) as resp:
            assert resp.status == 201, await resp.text()
            attachment = (await resp.json())["id"]
    uploaded = time.perf_counter()
    async with http.get(f"{base}/api/attachments/{attachment}") as resp:
        assert resp.status == 200
        received = 0
        async for piece in resp.content.iter_chunked(256 * 1024):
            received += len(piece)
    assert received == size
    return uploaded - began, time.perf_counter() - uploaded


async def app_with_account(root: Path, megabytes: int) -> tuple[TestServer, aiohttp.ClientSession]:
    settings = Settings(
        data_dir=root,
        password_hashing=CHEAP,
        delivery_worker=False,
        upload_max_bytes=(megabytes + 1) * 1024 * 1024,
    )
    server = TestServer(create_app(settings))
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    # The session cookie of a server at 127.0.0.1 needs an "unsafe" jar.
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    reply = await http.post(
        f"{base}/api/auth/register",
        json={
            "email": "b@example.fr",
            "password": "bench password 123",
            "first_name": "B",
            "last_name": "Ench",
        },
        headers={"Origin": base},
    )
    assert reply.status == 201
    return server, http


async def main(rounds: int, megabytes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "scan.pdf"
        size = len(b"%PDF-1.7\n") + megabytes * 1024 * 1024
        with source.open("wb") as out:
            out.write(b"%PDF-1.7\n")
            for _ in range(megabytes):
                out.write(os.urandom(1024 * 1024))
        sealed, sealed_http = await app_with_account(Path(tmp) / "sealed", megabytes)
        with in_clear():
            clear, clear_http = await app_with_account(Path(tmp) / "clear", megabytes)
        (Path(tmp) / "bare").mkdir()
        bare = TestServer(bare_app(Path(tmp) / "bare"))
        await bare.start_server()
        bases = {
            name: str(server.make_url("")).rstrip("/")
            for name, server in (("sealed", sealed), ("clear", clear), ("bare", bare))
        }
        async with aiohttp.ClientSession() as bare_http:
            times: dict[str, list[tuple[float, float]]] = {"sealed": [], "clear": [], "bare": []}
            for round_number in range(rounds + 1):  # the first is a warm-up
                with in_clear():
                    clear_time = await round_trip(clear_http, bases["clear"], source, size)
                sealed_time = await round_trip(sealed_http, bases["sealed"], source, size)
                bare_time = await round_trip(bare_http, bases["bare"], source, size)
                if round_number:
                    times["clear"].append(clear_time)
                    times["sealed"].append(sealed_time)
                    times["bare"].append(bare_time)
            # Memory apart from the timings (tracemalloc slows every allocation down).
            tracemalloc.start()
            await round_trip(sealed_http, bases["sealed"], source, size)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        await sealed_http.close()
        await clear_http.close()
        for server in (sealed, clear, bare):
            await server.close()
    for index, name in ((0, "upload"), (1, "download")):
        s, c, b = (
            statistics.median(t[index] for t in times[k]) for k in ("sealed", "clear", "bare")
        )
        print(
            f"{name:8s} {megabytes} MB: encrypted {s * 1000:6.1f} ms, same path in clear "
            f"{c * 1000:6.1f} ms, ratio {s / c:.2f} (goal ≤ 1.3); bare aiohttp {b * 1000:6.1f} ms"
        )
    both_s = statistics.median(sum(t) for t in times["sealed"])
    both_c = statistics.median(sum(t) for t in times["clear"])
    print(f"round trip: ratio {both_s / both_c:.2f} (goal ≤ 1.3)")
    print(
        f"peak Python allocations during an encrypted round trip: {peak / 1024 / 1024:.1f} MB "
        f"for a {megabytes} MB file (goal: a few chunks of {filecrypt.CHUNK // 1024} KiB)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--megabytes", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.megabytes))
