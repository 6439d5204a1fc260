"""Real ``teleconsult`` processes for the tests that need more than an in-process application:
several processes sharing Redis, a process killed or stopped by a signal."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import aiohttp
from yarl import URL

ROOT = Path(__file__).resolve().parents[1]


class Remote:
    """What ``Client`` needs of a server: its URLs."""

    def __init__(self, port: int, env: dict[str, str] | None = None) -> None:
        self.base = URL(f"http://127.0.0.1:{port}")
        self.env = env

    async def approve(self, email: str) -> None:
        """Approves a professional's account in this install, as its administrator would."""
        assert self.env is not None, "Remote(port, env) approves accounts"
        proc = await teleconsult("approve-user", "--email", email, env=self.env)
        assert await proc.wait() == 0

    def make_url(self, path: str) -> URL:
        return self.base.join(URL(path))


async def teleconsult(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def shared_install(data_dir: Path, redis_url: str) -> dict[str, str]:
    """The environment of processes that make one install (one SQLite file, one secret key,
    Redis between them), its database migrated."""
    env = {
        **os.environ,
        "TC_DATA_DIR": str(data_dir),
        "TC_REDIS_URL": redis_url,
        # Its own secret: rate-limit counters in Redis are per install (keyed by the secret),
        # so one test's sign-ups never count against another's.
        "TC_SECRET_KEY": f"several-process-test-{uuid.uuid4().hex}",
    }
    assert await (await teleconsult("migrate", env=env)).wait() == 0
    return env


async def serve(port: int, env: dict[str, str]) -> asyncio.subprocess.Process:
    """``teleconsult serve`` on ``port``, returned once it answers ``/healthz``."""
    proc = await teleconsult("serve", "--port", str(port), env=env)
    await wait_healthy(Remote(port))
    return proc


async def wait_healthy(remote: Remote) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(remote.make_url("/healthz")) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{remote.base} did not start")


async def stop(proc: asyncio.subprocess.Process, within: float = 15) -> int:
    """SIGTERM, then its exit status; killed, and the test failed, if it takes longer."""
    if proc.returncode is not None:
        return proc.returncode
    proc.terminate()
    try:
        return await asyncio.wait_for(proc.wait(), within)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"a server process did not stop within {within} s of SIGTERM") from exc
