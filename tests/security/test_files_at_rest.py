"""Files encrypted at rest (issue 24): what lies on disk is neither the file nor its type nor its
fingerprint; members get it back intact; a wrong, missing or malformed key stops the start with
a clear message; a rotation keeps every file readable; an altered or cut file does not open;
files stored in clear by an earlier version are sealed at start-up."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from server import filecrypt
from server.app import create_app
from server.filecrypt import DataKeyError, FileDamaged, KeyRing
from server.models import Attachment
from server.sealing import seal_plain_files
from server.settings import Settings, SettingsError
from server.storage import AttachmentStore
from tests.helpers import Client, connect

# Larger than a chunk and not a multiple of it; the second is exactly two chunks.
PDF = b"%PDF-1.7\n" + os.urandom(filecrypt.CHUNK * 2 + 12345)
EXACT = b"%PDF-1.7\n" + os.urandom(filecrypt.CHUNK * 2 - 9)


async def upload(client: Client, content: bytes, name: str) -> dict:  # type: ignore[type-arg]
    form = aiohttp.FormData()
    form.add_field("file", content, filename=name, content_type="application/pdf")
    reply = await client.request("POST", "/api/uploads", data=form)
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def download(client: Client, attachment_id: str) -> tuple[int, bytes]:
    async with client.session.get(client.server.make_url(f"/api/attachments/{attachment_id}")) as r:
        return r.status, await r.read()


async def stored_path(client: Client, attachment_id: str) -> Path:
    async with client.services.sessionmaker() as db:
        row = await db.get(Attachment, attachment_id)
        assert row is not None and row.storage_name and row.sha256 is None
        return client.services.attachments.path_of(row.storage_name)


async def test_a_stored_file_is_sealed_and_served_back_intact(
    doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    first = await upload(doctor, PDF, "ordonnance.pdf")
    twin = await upload(patient, PDF, "la-meme.pdf")
    exact = await upload(doctor, EXACT, "exact.pdf")
    sent = await doctor.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "m", "body": "Voici", "attachment_ids": [first["id"], exact["id"]]},
    )
    assert sent.status == 201, sent

    on_disk = (await stored_path(doctor, first["id"])).read_bytes()
    assert not on_disk.startswith(b"%PDF") and on_disk[:4] == filecrypt.MAGIC
    assert PDF[1000:1064] not in on_disk  # no run of the content
    sha = hashlib.sha256(PDF).hexdigest()
    assert not list(doctor.services.attachments.root.rglob(f"*{sha}*"))  # not named by content
    # The same file uploaded by two people: two names, two unrelated byte strings.
    twin_path = await stored_path(patient, twin["id"])
    assert twin_path != await stored_path(doctor, first["id"])
    assert twin_path.read_bytes()[100:200] != on_disk[100:200]

    assert await download(patient, first["id"]) == (200, PDF)
    assert await download(doctor, exact["id"]) == (200, EXACT)
    assert (await download(doctor, twin["id"]))[0] == 404  # the patient's, not posted


async def test_an_altered_or_cut_file_does_not_open(settings: Settings, tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path / "u", 10**8, KeyRing.parse(filecrypt.new_master_key()))

    async def one(data: bytes):  # type: ignore[no-untyped-def]
        yield data

    stored = await store.save(one(PDF))
    path = store.path_of(stored.name)
    assert await store.read(stored.name) == PDF
    original = path.read_bytes()
    for damaged in (
        original[:-1] + bytes([original[-1] ^ 1]),  # one bit of the last chunk
        original[: filecrypt.HEADER_BYTES + filecrypt.CHUNK + filecrypt.TAG],  # last chunks cut
        original[: filecrypt.HEADER_BYTES]  # header only
        + original[filecrypt.HEADER_BYTES + filecrypt.CHUNK + filecrypt.TAG :],  # chunk 0 dropped
    ):
        path.write_bytes(damaged)
        with pytest.raises(FileDamaged):
            await store.read(stored.name)
    other = AttachmentStore(store.root, 10**8, KeyRing.parse(filecrypt.new_master_key()))
    path.write_bytes(original)
    with pytest.raises(DataKeyError):
        await other.read(stored.name)


async def test_a_wrong_missing_or_malformed_key_stops_the_start(
    settings: Settings,
    start_server,
    doctor: Client,  # type: ignore[no-untyped-def]
) -> None:
    await upload(doctor, PDF, "a.pdf")  # the server sealed files with the generated key
    key_file = settings.data_dir / "data_key"
    assert key_file.exists() and key_file.stat().st_mode & 0o777 == 0o600

    with pytest.raises(DataKeyError, match="does not open the files"):
        create_app(replace(settings, data_key=filecrypt.new_master_key()))
    with pytest.raises(DataKeyError, match=r"valid base64|32 bytes"):
        create_app(replace(settings, data_key="not a key"))
    kept = key_file.read_text()
    key_file.unlink()
    with pytest.raises(SettingsError, match="the data key is missing"):
        create_app(settings)
    key_file.write_text(kept)
    create_app(settings)  # the right key again: starts


async def test_rotation_keeps_every_file_readable(
    settings: Settings, doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    files = [await upload(doctor, PDF, "a.pdf"), await upload(doctor, EXACT, "b.pdf")]
    await doctor.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "m", "body": "x", "attachment_ids": [f["id"] for f in files]},
    )
    key_file = settings.data_dir / "data_key"
    old = key_file.read_text().strip()
    env = {
        **os.environ,
        "TC_DATA_DIR": str(settings.data_dir),
        "TC_DATABASE_URL": settings.effective_database_url,
        "TC_SECRET_KEY": "test-secret",
        "TC_DATA_KEY": "",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "rotate-data-key"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "2 files rewrapped" in done.stdout
    new = key_file.read_text().strip()
    assert new != old and "," not in new
    new_ring = KeyRing.parse(new)
    store = AttachmentStore(settings.uploads_dir, 10**8, new_ring)
    store.check_key()
    async with doctor.services.sessionmaker() as db:
        names = [a.storage_name for a in await db.scalars(select(Attachment))]
    assert sorted([await store.read(n or "") for n in names]) == sorted([PDF, EXACT])
    with pytest.raises(DataKeyError):
        create_app(replace(settings, data_key=old))  # the old key opens nothing any more


async def test_files_stored_in_clear_are_sealed_at_start(doctor: Client, patient: Client) -> None:
    """As an earlier version left them: uploads/ab/<sha256>, one file for two rows."""
    cid = await connect(doctor, patient)
    services = doctor.services
    sha = hashlib.sha256(PDF).hexdigest()
    plain = services.attachments.root / sha[:2] / sha
    plain.parent.mkdir(parents=True, exist_ok=True)
    plain.write_bytes(PDF)
    async with services.sessionmaker() as db:
        rows = [
            Attachment(
                uploader_id=doctor.user["id"],  # type: ignore[index]
                sha256=sha,
                storage_name=None,
                size=len(PDF),
                content_type="application/pdf",
                filename=f"{n}.pdf",
                created_at=services.clock.now(),
            )
            for n in ("a", "b")
        ]
        db.add_all(rows)
        await db.commit()
        ids = [r.id for r in rows]
    sent = await doctor.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "m", "body": "x", "attachment_ids": ids},
    )
    assert sent.status == 201, sent
    assert (await download(patient, ids[0]))[0] == 404  # in clear: not served until sealed

    assert await seal_plain_files(services) == 2
    assert not plain.exists()
    for attachment_id in ids:
        path = await stored_path(doctor, attachment_id)
        assert not path.read_bytes().startswith(b"%PDF")
        assert await download(patient, attachment_id) == (200, PDF)
    assert await seal_plain_files(services) == 0  # nothing left; a second start does nothing
