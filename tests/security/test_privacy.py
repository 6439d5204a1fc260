"""The patient's right of access (RGPD art. 15/20) and retention (issue 24): the archive holds the
patient's messages and files and nothing of another patient; an administrator can make it for
them; quality samples go after the retention delay, medical documents never."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from datetime import timedelta

import aiohttp
from sqlalchemy import func, select

from server.clock import FakeClock
from server.models import AuditEvent, CallEvent, Document, Role, User
from server.privacy.retention import sweep
from tests.helpers import Client, connect
from tests.server.test_billing import record_body, video_call

MakeClient = Callable[[], Client]
SCAN = b"%PDF-1.4\n" + b"radio du genou gauche " * 40
OTHER_SCAN = b"%PDF-1.4\n" + b"dossier de quelqu'un d'autre " * 40


async def upload(client: Client, content: bytes, name: str) -> str:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=name)
    reply = await client.request("POST", "/api/uploads", data=form)
    assert reply.status == 201, reply
    return str(reply.body["id"])


async def archive_of(client: Client, path: str) -> zipfile.ZipFile:
    async with client.session.get(client.server.make_url(path)) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "application/zip"
        assert "attachment" in resp.headers["Content-Disposition"]
        return zipfile.ZipFile(io.BytesIO(await resp.read()))


async def test_the_archive_holds_the_patients_data_and_nothing_of_another(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    await doctor.post(
        f"/api/conversations/{cid}/messages", {"client_id": "d0", "body": "Envoyez la radio."}
    )
    scan = await upload(patient, SCAN, "radio.pdf")
    sent = await patient.post(
        f"/api/conversations/{cid}/messages",
        {"client_id": "p1", "body": "Voici ma radio, docteur.", "attachment_ids": [scan]},
    )
    assert sent.status == 201, sent
    prescription = await doctor.post(
        f"/api/conversations/{cid}/documents",
        {"kind": "prescription", "lines": ["Kinésithérapie, 10 séances"], "client_id": "d1"},
    )
    assert prescription.status == 201, prescription
    asked = await doctor.post(
        f"/api/conversations/{cid}/payment-requests",
        {"amount_cents": 2500, "label": "Téléconsultation", "client_id": "x"},
    )
    assert asked.status == 201
    call_id = await video_call(doctor, patient, cid, seconds=20)

    # Another patient of the same doctor, with a file and words of their own.
    other = make_client()
    await other.register(email="autre.patient@example.fr", first_name="Zoé", last_name="Ailleurs")
    other_cid = await connect(doctor, other)
    await doctor.post(
        f"/api/conversations/{other_cid}/messages", {"client_id": "d9", "body": "Bonjour"}
    )
    other_scan = await upload(other, OTHER_SCAN, "autre.pdf")
    secret = await other.post(
        f"/api/conversations/{other_cid}/messages",
        {"client_id": "o1", "body": "Secret de Zoé", "attachment_ids": [other_scan]},
    )
    assert secret.status == 201, secret

    archive = await archive_of(patient, "/api/me/export")
    names = archive.namelist()
    assert "LISEZMOI.txt" in names and "compte.json" in names
    account = json.loads(archive.read("compte.json"))
    assert account["compte"]["email"] == "eloise.durand@example.fr"
    conversations = [n for n in names if n.startswith("conversations/")]
    assert len(conversations) == 1
    thread = json.loads(archive.read(conversations[0]))
    assert thread["avec"] == "Dr Claire Martin"
    assert "Voici ma radio, docteur." in [m["texte"] for m in thread["messages"]]
    assert thread["documents"][0]["contenu"]["lines"] == ["Kinésithérapie, 10 séances"]
    files = {n: archive.read(n) for n in names if n.startswith("fichiers/")}
    assert SCAN in files.values()
    assert any(data.startswith(b"%PDF") and data != SCAN for data in files.values())  # the PDF
    calls = json.loads(archive.read("appels.json"))
    assert len(calls) == 1 and {p["nom"] for p in calls[0]["participants"]} == {
        "Dr Claire Martin",
        "Éloïse Durand",
    }
    payments = json.loads(archive.read("paiements.json"))
    assert [(p["montant_euros"], p["statut"]) for p in payments] == [("25,00", "requested")]
    # Nothing of the other patient, anywhere in the archive.
    everything = b"".join(archive.read(n) for n in names)
    for trace in (b"Ailleurs", "Zoé".encode(), "Secret de Zoé".encode(), OTHER_SCAN[9:60]):
        assert trace not in everything
    assert call_id  # the call is in (checked above); its quality samples are not exported
    assert b"frames_decoded" not in everything

    # The administrator makes the same archive for the patient; nobody else can.
    admin = make_client()
    await admin.register(email="admin@example.fr", first_name="Ad", last_name="Min")
    async with admin.services.sessionmaker() as db:
        user = await db.get(User, admin.user["id"])  # type: ignore[index]
        assert user is not None
        user.role = Role.ADMIN
        await db.commit()
    by_admin = await archive_of(admin, f"/api/admin/users/{patient.user['id']}/export")  # type: ignore[index]
    assert sorted(by_admin.namelist()) == sorted(names)
    refused = await doctor.get(f"/api/admin/users/{patient.user['id']}/export")  # type: ignore[index]
    assert refused.status == 403
    async with doctor.services.sessionmaker() as db:
        exported = list(
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "data.exported"))
        )
    assert sorted((e.actor_id, e.resource_id) for e in exported) == sorted(
        [
            (patient.user["id"], patient.user["id"]),  # type: ignore[index]
            (admin.user["id"], patient.user["id"]),  # type: ignore[index]
        ]
    )


async def test_quality_samples_expire_medical_documents_stay(
    doctor: Client, patient: Client, make_client: MakeClient, clock: FakeClock
) -> None:
    cid = await connect(doctor, patient)
    coded = await video_call(doctor, patient, cid, seconds=60)
    saved = await doctor.post(
        f"/api/calls/{coded}/billing", record_body("TCG", pathway="treating_doctor")
    )
    assert saved.status == 201, saved
    never_coded = await video_call(doctor, patient, cid, seconds=20)
    document = await doctor.post(
        f"/api/conversations/{cid}/documents",
        {"kind": "prescription", "lines": ["Repos"], "client_id": "d1"},
    )
    assert document.status == 201
    services = doctor.services

    async def samples(call_id: str) -> int:
        async with services.sessionmaker() as db:
            return int(
                await db.scalar(
                    select(func.count()).where(
                        CallEvent.call_id == call_id, CallEvent.kind == "stats"
                    )
                )
                or 0
            )

    before = await samples(coded)
    assert before > 0 and await samples(never_coded) > 0
    clock.advance(timedelta(days=89))
    assert (await sweep(services))[0] == 0  # not yet
    clock.advance(timedelta(days=2))
    deleted, _ = await sweep(services)
    assert deleted == before and await samples(coded) == 0
    assert await samples(never_coded) > 0  # not coded: kept while it may still be billed
    async with services.sessionmaker() as db:
        timeline = await db.scalar(
            select(func.count()).where(CallEvent.call_id == coded, CallEvent.kind != "stats")
        )
        documents = await db.scalar(select(func.count()).select_from(Document))
        rows = list(
            await db.scalars(
                select(AuditEvent).where(AuditEvent.action == "retention.call_samples")
            )
        )
    assert timeline and documents == 1
    assert [r.details["deleted"] for r in rows] == [before]  # type: ignore[index]
    clock.advance(timedelta(days=730))
    assert (await sweep(services))[0] > 0 and await samples(never_coded) == 0
