"""Uploads: type sniffed from content, size-limited, streamed, content-addressed; served only to
members of the conversation that carries them."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from server.settings import Settings
from tests.helpers import Client, Reply, connect

MakeClient = Callable[[], Client]
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 32


async def upload(
    client: Client, data: bytes, filename: str, content_type: str = "application/octet-stream"
) -> Reply:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type=content_type)
    return await client.request("POST", "/api/uploads", data=form)


async def test_accepted_types_are_sniffed_not_trusted(doctor: Client) -> None:
    for data, name, expected, stored_name in [
        (PDF, "ordonnance.pdf", "application/pdf", "ordonnance.pdf"),
        (PNG, "photo", "image/png", "photo.png"),
        (JPEG, "IMG_0001.JPG", "image/jpeg", "IMG_0001.jpg"),
        (HEIC, "IMG_0002.HEIC", "image/heic", "IMG_0002.heic"),
        (PDF, "../../etc/passwd.png", "application/pdf", "passwd.pdf"),
    ]:
        reply = await upload(doctor, data, name, "image/png")
        assert reply.status == 201, (name, reply)
        assert reply.body["content_type"] == expected and reply.body["filename"] == stored_name
        assert reply.body["size"] == len(data)


async def test_refused_types_and_sizes(
    start_server: Callable[..., object], client_of: Callable[..., Client], settings: Settings
) -> None:
    server = await start_server(upload_max_bytes=4096)  # type: ignore[operator]
    doctor = client_of(server)
    from tests.helpers import valid_rpps

    await doctor.register(
        email="d@example.fr", first_name="A", last_name="B", role="doctor", rpps=valid_rpps(40)
    )
    fake_pdf = await upload(
        doctor, b"MZ\x90\x00 this is an executable", "ordonnance.pdf", "application/pdf"
    )
    assert fake_pdf.status == 415 and "PDF, JPEG, PNG" in fake_pdf.body["detail"]
    empty = await upload(doctor, b"", "vide.pdf")
    assert empty.status == 415 and "vide" in empty.body["detail"]
    html = await upload(doctor, b"<html><script>alert(1)</script></html>", "page.pdf")
    assert html.status == 415
    huge = await upload(doctor, PDF + b"0" * 10_000, "gros.pdf")
    assert huge.status == 413 and "taille maximale" in huge.body["detail"]
    no_file = await doctor.request("POST", "/api/uploads", data=aiohttp.FormData({"other": "x"}))
    assert no_file.status == 400
    not_multipart = await doctor.post("/api/uploads", {"file": "x"})
    assert not_multipart.status == 400
    uploads = settings.data_dir / "uploads"
    leftovers = [p for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else []
    assert [p.name for p in leftovers] == [".keycheck"]  # refused uploads leave nothing on disk


async def test_attachment_in_a_message_is_for_members_only(
    doctor: Client, patient: Client, make_client: MakeClient, settings: Settings
) -> None:
    cid = await connect(doctor, patient)
    up = (await upload(doctor, PDF, "ordonnance.pdf")).body
    again = (await upload(doctor, PDF, "copie.pdf")).body
    stored = [p for p in (settings.data_dir / "uploads").rglob("??/*") if p.is_file()]
    # Each upload sealed apart: a shared file would tell who holds the same content (issue 24).
    assert len(stored) == 2
    stranger = make_client()
    await stranger.register(email="s@example.fr", first_name="S", last_name="S")
    # Before posting, only the uploader can fetch it.
    assert (await patient.get(f"/api/attachments/{up['id']}")).status == 404
    message = await doctor.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "m1", "body": "Votre ordonnance", "attachment_ids": [up["id"]]},
    )
    assert message.status == 201
    assert [a["filename"] for a in message.body["attachments"]] == ["ordonnance.pdf"]
    async with patient.session.get(patient.server.make_url(f"/api/attachments/{up['id']}")) as resp:
        assert resp.status == 200 and await resp.read() == PDF
        assert resp.headers["Content-Type"] == "application/pdf"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "filename*=UTF-8''ordonnance.pdf" in resp.headers["Content-Disposition"]
    assert (await stranger.get(f"/api/attachments/{up['id']}")).status == 404
    # An attachment goes in one message only, and only its uploader may post it.
    reuse = await doctor.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "m2", "body": "Encore", "attachment_ids": [up["id"]]},
    )
    assert reuse.status == 422 and "déjà dans un message" in reuse.body["detail"]
    await doctor.patch(f"/api/conversations/{cid}", {"patient_can_write": True})
    steal = await patient.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "p1", "body": "x", "attachment_ids": [again["id"]]},
    )
    assert steal.status == 422
    attachment_only = await doctor.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "m3", "body": "", "attachment_ids": [again["id"]]},
    )
    assert attachment_only.status == 201


async def test_upload_needs_sign_in(make_client: MakeClient) -> None:
    reply = await upload(make_client(), PDF, "a.pdf")
    assert reply.status == 401


def test_sniffer_on_real_headers() -> None:
    from server.storage import sniff

    assert sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff(b"\x00\x00\x00\x1cftypmif1") == "image/heif"
    assert sniff(b"\x00\x00\x00\x1cftypisom") is None  # an MP4 video
    assert sniff(b"GIF89a") is None
