"""Uploads never posted used to stay on disk for good."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
from sqlalchemy import select

from server.clock import FakeClock
from server.conversations.stale_uploads import sweep_stale_uploads
from server.models import Attachment, AuditEvent
from tests.helpers import Client, connect


async def upload(client: Client, content: bytes, name: str) -> dict:  # type: ignore[type-arg]
    form = aiohttp.FormData()
    form.add_field("file", content, filename=name)
    reply = await client.request("POST", "/api/uploads", data=form)
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def test_uploads_never_posted_are_deleted_after_a_day(
    doctor: Client, patient: Client, clock: FakeClock
) -> None:
    cid = await connect(doctor, patient)
    services = doctor.services
    posted = await upload(doctor, b"%PDF-1.4 posted", "posted.pdf")
    forgotten = await upload(doctor, b"%PDF-1.4 forgotten", "forgotten.pdf")
    # The same content as a posted file, uploaded again and never sent.
    twin = await upload(patient, b"%PDF-1.4 posted", "twin.pdf")
    sent = await doctor.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "m1", "body": "Ordonnance", "attachment_ids": [posted["id"]]},
    )
    assert sent.status == 201
    async with services.sessionmaker() as db:
        files = {
            a.id: services.attachments.path_of(a.storage_name or "")
            for a in await db.scalars(select(Attachment))
        }
    assert all(path.exists() for path in files.values())

    clock.advance(timedelta(hours=23))
    assert await sweep_stale_uploads(services) == 0  # a draft of this morning stays
    await doctor.login()  # their sessions went idle meanwhile
    await patient.login()
    assert (await doctor.get(f"/api/attachments/{forgotten['id']}")).status == 200

    clock.advance(timedelta(hours=2))
    # Each upload has a file of its own (sealed under a random name): the twin's goes too,
    # the posted file of the same content stays.
    assert await sweep_stale_uploads(services) == 2
    await doctor.login()
    await patient.login()
    assert not files[forgotten["id"]].exists() and not files[twin["id"]].exists()
    assert files[posted["id"]].exists()
    assert (await doctor.get(f"/api/attachments/{forgotten['id']}")).status == 404
    assert (await patient.get(f"/api/attachments/{twin['id']}")).status == 404
    assert (await patient.get(f"/api/attachments/{posted['id']}")).status == 200
    async with services.sessionmaker() as db:
        expired = list(
            await db.scalars(
                select(AuditEvent.resource_id).where(AuditEvent.action == "attachment.expired")
            )
        )
    assert sorted(expired) == sorted([forgotten["id"], twin["id"]])
