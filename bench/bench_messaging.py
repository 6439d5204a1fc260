"""Real-time messaging under load: N socket.io clients in conversations, messages posted over
HTTP at a steady rate; delivered messages per second, p50/p99 delivery latency (post sent →
message:new received by the other member), lost and duplicated deliveries, server RSS per
connection. Measured for our server on SQLite and on PostgreSQL, and for a bare python-socketio
server of the same shape (bench/echo_server.py) with the same harness in the same run: the
ratios ours/baseline are printed.

    .venv/bin/python bench/bench_messaging.py [--clients 1000] [--rate 500] [--seconds 10]

Each conversation has two members (a doctor and a patient), each with one socket; messages are
posted alternately by both. The servers run in their own processes; this process drives clients.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import socketio
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.db import create_engine, migrate  # noqa: E402
from server.models import AuthSession, Conversation, User  # noqa: E402

PG_DSN = os.environ.get("TC_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Member:
    user_id: str
    token: str


@dataclass
class Pair:
    conversation_id: str
    doctor: Member
    patient: Member


@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)
    received: dict[tuple[str, int, str], int] = field(default_factory=dict)
    expected: set[tuple[str, int, str]] | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, keys: set[tuple[str, int, str]]) -> None:
        self.expected = keys
        self._check()

    def _check(self) -> None:
        if self.expected is not None and self.expected <= self.received.keys():
            self.complete.set()

    def record(self, member: str, message: dict[str, Any]) -> None:
        key = (message["conversation_id"], message["seq"], member)
        self.received[key] = self.received.get(key, 0) + 1
        self._check()
        body = message.get("body", "")
        if body.startswith("t=") and self.received[key] == 1:
            sent = float(body[2:].split()[0])
            self.latencies_ms.append((time.perf_counter() - sent) * 1000)


async def seed(url: str, pairs: int) -> list[Pair]:
    """Users, conversations and sessions written straight to the database: signing 1,000 people
    up through argon2 would take minutes and measure nothing about messaging."""
    engine = create_engine(url)
    await migrate(engine)
    now = datetime.now(UTC)
    users, conversations, sessions, result = [], [], [], []
    for i in range(pairs):
        members = []
        for role in ("doctor", "patient"):
            uid = uuid.uuid4().hex
            token = secrets.token_urlsafe(32)
            users.append(
                {
                    "id": uid,
                    "email": f"{role}{i}@bench.example.fr",
                    "password_hash": "x",
                    "role": role,
                    "first_name": role,
                    "last_name": str(i),
                    "search_name": f"{role} {i}",
                    "is_active": True,
                    "created_at": now,
                    "approved_at": now,
                    "rpps": None,
                }
            )
            sessions.append(
                {
                    "id": uuid.uuid4().hex,
                    "token_hash": hashlib.sha256(token.encode()).hexdigest(),
                    "user_id": uid,
                    "created_at": now,
                    "expires_at": now + timedelta(days=1),
                    "idle_expires_at": now + timedelta(days=1),
                }
            )
            members.append(Member(uid, token))
        cid = uuid.uuid4().hex
        conversations.append(
            {
                "id": cid,
                "practitioner_id": members[0].user_id,
                "patient_id": members[1].user_id,
                "origin": "invitation",
                "patient_can_write": True,
                "created_at": now,
                "last_seq": 0,
            }
        )
        result.append(Pair(cid, members[0], members[1]))
    async with engine.begin() as conn:
        await conn.execute(insert(User), users)
        await conn.execute(insert(Conversation), conversations)
        await conn.execute(insert(AuthSession), sessions)
    await engine.dispose()
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def wait_up(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"{base}/healthz") as r:
                    if r.status in (200, 404):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{base} did not start")


async def run_load(
    base: str, pid: int, pairs: list[Pair], rate: int, seconds: float, origin_check: bool
) -> dict[str, float]:
    stats = Stats()
    clients: list[socketio.AsyncClient] = []
    rss_before = rss_kib(pid)

    async def open_socket(member: Member, conversation_id: str, name: str) -> None:
        client = socketio.AsyncClient(reconnection=False)
        client.on("message:new", lambda m: stats.record(name, m))
        await client.connect(
            base,
            headers={"Cookie": f"tc_session={member.token}", "Origin": base},
            transports=["websocket"],
            wait_timeout=30,
        )
        reply = await client.call(
            "conversation:subscribe",
            {"conversation_id": conversation_id, "after_seq": 0},
            timeout=30,
        )
        assert reply["ok"], reply
        clients.append(client)

    jobs = []
    for pair in pairs:
        jobs.append((pair.doctor, pair.conversation_id, f"d:{pair.conversation_id}"))
        jobs.append((pair.patient, pair.conversation_id, f"p:{pair.conversation_id}"))
    for start in range(0, len(jobs), 50):
        await asyncio.gather(*(open_socket(*job) for job in jobs[start : start + 50]))
    await asyncio.sleep(1)
    rss_after = rss_kib(pid)
    # This process holds 1,000 clients: without this, the collector's passes over them (and
    # over the posts in flight) pause every client at once, and the pauses show as delivery
    # latency of whichever server is measured. The load generator is not what is measured: its
    # collector stays off while it measures (the run is short, and its garbage is small).
    gc.collect()
    gc.freeze()
    gc.disable()

    total = int(rate * seconds)
    posted: list[tuple[str, int]] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def post_one(i: int) -> None:
            nonlocal errors
            pair = pairs[i % len(pairs)]
            author = pair.doctor if (i // len(pairs)) % 2 == 0 else pair.patient
            body = {"client_id": f"b{i}", "body": f"t={time.perf_counter():.6f} message {i}"}
            if author is pair.patient:
                body["reason"] = "question"
            try:
                async with http.post(
                    f"{base}/api/conversations/{pair.conversation_id}/messages",
                    json=body,
                    headers={"Cookie": f"tc_session={author.token}", "Origin": base},
                ) as r:
                    if r.status != 201:
                        errors += 1
                        return
                    message = await r.json()
                    posted.append((message["conversation_id"], message["seq"]))
            except aiohttp.ClientError:
                errors += 1

        in_flight: set[asyncio.Task[None]] = set()
        cpu_before = cpu_seconds(pid)
        client_cpu_before = time.process_time()
        started = time.perf_counter()
        for i in range(total):
            target = started + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(post_one(i))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        while in_flight:
            await asyncio.gather(*in_flight)
        send_seconds = time.perf_counter() - started
        # Let the last deliveries arrive.
        expected = {(c, s, who) for c, s in posted for who in (f"d:{c}", f"p:{c}")}
        stats.expect(expected)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stats.complete.wait(), 10)
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(pid) - cpu_before
        client_cpu = time.process_time() - client_cpu_before
    gc.enable()
    for client in clients:
        await client.disconnect()
    delivered = sum(1 for key in expected if key in stats.received)
    duplicated = sum(1 for key in expected if stats.received.get(key, 0) > 1)
    lat = sorted(stats.latencies_ms)
    return {
        "posted": len(posted),
        "post_errors": errors,
        "achieved_rate": len(posted) / send_seconds,
        "delivered_per_s": delivered / elapsed,
        "lost": len(expected) - delivered,
        "duplicated": duplicated,
        "p50_ms": statistics.median(lat) if lat else float("nan"),
        "p99_ms": lat[int(len(lat) * 0.99) - 1] if lat else float("nan"),
        "rss_per_conn_kib": (rss_after - rss_before) / max(1, len(clients)),
        "cpu_ms_per_message": server_cpu * 1000 / max(1, len(posted)),
        "cpu_load": server_cpu / elapsed,
        "client_load": client_cpu / elapsed,
    }


def start(cmd: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb") if log else subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


async def measure_ours(
    label: str, url: str, pairs_n: int, rate: int, seconds: float, data_dir: Path
) -> dict[str, float]:
    pairs = await seed(url, pairs_n)
    port = free_port()
    env = {
        **os.environ,
        "TC_DATABASE_URL": url,
        "TC_DATA_DIR": str(data_dir),
        "TC_SECRET_KEY": "bench",
        "TC_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    log = data_dir / f"server-{label}.log"
    proc = start([sys.executable, "-m", "server", "serve", "--port", str(port)], env, log)
    try:
        await wait_up(f"http://127.0.0.1:{port}")
        result = await run_load(f"http://127.0.0.1:{port}", proc.pid, pairs, rate, seconds, True)
    finally:
        stop(proc)
    # The writer's own count, logged at shutdown: how many messages each transaction carried.
    for text in log.read_text().splitlines():
        if "message writer:" in text:
            words = text.split("message writer:")[1].replace(",", "").split()
            posts, batches, ms = int(words[0]), int(words[3]), float(words[5])
            result["per_transaction"] = posts / max(1, batches)
            result["transaction_ms"] = ms
    return result


async def measure_baseline(pairs_n: int, rate: int, seconds: float) -> dict[str, float]:
    pairs = [Pair(uuid.uuid4().hex, Member("d", "x"), Member("p", "x")) for _ in range(pairs_n)]
    port = free_port()
    proc = start(
        [sys.executable, str(ROOT / "bench" / "echo_server.py"), str(port)], dict(os.environ)
    )
    try:
        await wait_up(f"http://127.0.0.1:{port}")
        return await run_load(f"http://127.0.0.1:{port}", proc.pid, pairs, rate, seconds, False)
    finally:
        stop(proc)


def line(label: str, r: dict[str, float], base: dict[str, float] | None) -> str:
    text = (
        f"{label:<22} posted {r['posted']:5.0f} ({r['achieved_rate']:5.0f}/s, "
        f"{r['post_errors']:.0f} errors)  delivered {r['delivered_per_s']:6.0f}/s  "
        f"lost {r['lost']:.0f}  dup {r['duplicated']:.0f}  p50 {r['p50_ms']:6.1f} ms  "
        f"p99 {r['p99_ms']:6.1f} ms  RSS/conn {r['rss_per_conn_kib']:5.1f} KiB\n"
        f"{'':<22} server CPU {r['cpu_ms_per_message']:.2f} ms per message, "
        f"{r['cpu_load'] * 100:.0f}% of a core (this bench's clients: "
        f"{r['client_load'] * 100:.0f}%)"
    )
    if "per_transaction" in r:
        text += (
            f", {r['per_transaction']:.1f} messages per transaction of {r['transaction_ms']:.1f} ms"
        )
    if base:
        text += (
            f"\n{'':<22} ratio to baseline: p50 ×{r['p50_ms'] / base['p50_ms']:.2f}  "
            f"p99 ×{r['p99_ms'] / base['p99_ms']:.2f}  "
            f"delivered/s ×{r['delivered_per_s'] / base['delivered_per_s']:.2f}  "
            f"RSS/conn ×{r['rss_per_conn_kib'] / max(0.1, base['rss_per_conn_kib']):.2f}  "
            f"CPU/message ×{r['cpu_ms_per_message'] / base['cpu_ms_per_message']:.2f}"
        )
    return text


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    pairs = args.clients // 2
    print(
        f"{args.clients} socket.io clients in {pairs} conversations, {args.rate} messages/s "
        f"for {args.seconds:.0f} s, each delivered to both members; machine: {os.cpu_count()} cores"
    )
    baseline = await measure_baseline(pairs, args.rate, args.seconds)
    print(line("baseline (bare sio)", baseline, None), flush=True)
    with tempfile.TemporaryDirectory(prefix="tc-bench-") as tmp:
        if not args.skip_sqlite:
            sqlite = await measure_ours(
                "sqlite",
                f"sqlite+aiosqlite:///{tmp}/bench.db",
                pairs,
                args.rate,
                args.seconds,
                Path(tmp),
            )
            print(line("ours, SQLite", sqlite, baseline), flush=True)
        if not args.skip_postgres:
            name = f"tc_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(PG_DSN)
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = (
                    PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
                    + f"/{name}"
                )
                pg = await measure_ours(
                    "postgresql", url, pairs, args.rate, args.seconds, Path(tmp)
                )
                print(line("ours, PostgreSQL", pg, baseline), flush=True)
            finally:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                await admin.close()
    print(
        "goal: p99 < 50 ms at 500 messages/s with 1,000 clients on one process, "
        "none lost or doubled"
    )


if __name__ == "__main__":
    asyncio.run(main())
