"""The audit log nobody can edit unnoticed (issue 24): each row is chained to the one before;
editing, deleting or reordering a row in the database (SQLite and PostgreSQL) makes the check
fail and name the row; two processes writing at once keep one valid chain; a refused access is
in the log with its caller."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable

from sqlalchemy import delete, select, text, update

from server.audit.verify import verify
from server.models import AuditEvent, Role
from server.settings import Settings
from tests.helpers import Client, connect

MakeClient = Callable[[], Client]


async def some_activity(doctor: Client, patient: Client) -> str:
    cid = await connect(doctor, patient)
    for n in range(3):
        reply = await doctor.post(
            f"/api/conversations/{cid}/messages", {"client_id": f"m{n}", "body": f"Message {n}"}
        )
        assert reply.status == 201
    await patient.get(f"/api/conversations/{cid}/messages")
    return cid


async def check(client: Client):  # type: ignore[no-untyped-def]
    async with client.services.sessionmaker() as db:
        return await verify(db)


async def rows(client: Client) -> list[AuditEvent]:
    async with client.services.sessionmaker() as db:
        return list(await db.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


async def test_the_chain_holds_and_names_an_edited_row(
    doctor: Client, patient: Client, make_client: MakeClient, settings: Settings
) -> None:
    await some_activity(doctor, patient)
    verdict = await check(doctor)
    written = await rows(doctor)
    assert verdict.ok and verdict.checked == len(written) >= 5, verdict
    assert [r.seq for r in written] == list(range(1, len(written) + 1))
    assert verdict.head_seq == written[-1].seq and verdict.head_hash == written[-1].row_hash

    # An administrator rewrites who did something, straight in the database.
    target = written[2]
    async with doctor.services.sessionmaker() as db:
        await db.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(ip="10.9.9.9"))
        await db.commit()
    verdict = await check(doctor)
    assert not verdict.ok
    assert (verdict.broken_seq, verdict.broken_id) == (target.seq, target.id)
    assert "altered" in (verdict.problem or "")
    # The audit API flags the row it serves.
    admin = make_client()
    await admin.register(email="admin@example.fr", first_name="A", last_name="Dmin")
    async with admin.services.sessionmaker() as db:
        from server.models import User

        user = await db.get(User, admin.user["id"])  # type: ignore[index]
        assert user is not None
        user.role = Role.ADMIN
        await db.commit()
    listed = await admin.get("/api/admin/audit?limit=1000")
    flags = {e["id"]: e["intact"] for e in listed.body["items"]}
    assert flags[target.id] is False
    assert sum(1 for ok in flags.values() if not ok) == 1

    if settings.effective_database_url.startswith("sqlite"):
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "server", "audit", "verify"],
            env={**os.environ, "TC_DATABASE_URL": settings.effective_database_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"AUDIT CHAIN BROKEN at row {target.seq} (id {target.id})" in done.stdout


async def test_a_deleted_or_moved_row_breaks_the_chain(doctor: Client, patient: Client) -> None:
    await some_activity(doctor, patient)
    written = await rows(doctor)
    middle, last = written[3], written[-1]
    async with doctor.services.sessionmaker() as db:
        await db.execute(delete(AuditEvent).where(AuditEvent.id == middle.id))
        await db.commit()
    verdict = await check(doctor)
    assert not verdict.ok and verdict.broken_seq == middle.seq + 1
    assert f"rows {middle.seq} to {middle.seq} are missing" in (verdict.problem or "")

    # Put it back as it was: the chain holds again (nothing else was touched).
    async with doctor.services.sessionmaker() as db:
        db.add(
            AuditEvent(
                **{c: getattr(middle, c) for c in AuditEvent.__table__.columns.keys()}  # noqa: SIM118
            )
        )
        await db.commit()
    assert (await check(doctor)).ok

    # Two rows swap places (their seq exchanged).
    a, b = written[1], written[2]
    async with doctor.services.sessionmaker() as db:
        await db.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=-1))
        await db.execute(update(AuditEvent).where(AuditEvent.id == b.id).values(seq=a.seq))
        await db.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=b.seq))
        await db.commit()
    verdict = await check(doctor)
    assert not verdict.ok and verdict.broken_seq == a.seq and verdict.broken_id == b.id
    async with doctor.services.sessionmaker() as db:
        await db.execute(update(AuditEvent).where(AuditEvent.id == b.id).values(seq=-1))
        await db.execute(update(AuditEvent).where(AuditEvent.id == a.id).values(seq=a.seq))
        await db.execute(update(AuditEvent).where(AuditEvent.id == b.id).values(seq=b.seq))
        # The newest row goes: only the head tells.
        await db.execute(delete(AuditEvent).where(AuditEvent.id == last.id))
        await db.commit()
    verdict = await check(doctor)
    assert not verdict.ok and "last rows were deleted" in (verdict.problem or "")


async def test_two_processes_writing_at_once_keep_one_chain(
    doctor: Client, settings: Settings, database: tuple[str, str | None]
) -> None:
    url, schema = database
    env = {**os.environ, "PYTHONPATH": os.getcwd()}

    async def writer(label: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.security.audit_writer",
            url,
            schema or "-",
            "40",
            label,
            env=env,
        )

    processes = [await writer("one"), await writer("two")]
    assert [await p.wait() for p in processes] == [0, 0]
    written = await rows(doctor)
    mine = [r for r in written if r.action == "test.write"]
    assert len(mine) == 160
    assert {r.details["writer"] for r in mine} == {"one", "two"}  # type: ignore[index]
    verdict = await check(doctor)
    assert verdict.ok and verdict.checked == len(written), verdict
    assert [r.seq for r in written] == list(range(1, len(written) + 1))


async def test_a_refused_access_is_recorded_with_its_caller(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await some_activity(doctor, patient)
    outsider = make_client()
    await outsider.register(email="curieux@example.fr", first_name="Cu", last_name="Rieux")
    probed = await outsider.get(f"/api/conversations/{cid}/messages")
    assert probed.status == 404
    async with doctor.services.sessionmaker() as db:
        refused = list(
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "access.refused"))
        )
        count = await db.scalar(text("SELECT count(*) FROM audit_events"))
    assert [(e.actor_id, e.resource_id) for e in refused] == [(outsider.user["id"], cid)]  # type: ignore[index]
    assert refused[0].details == {"method": "GET", "status": 404}
    assert refused[0].resource_type == "/api/conversations/{id}/messages"
    assert count and (await check(doctor)).ok
