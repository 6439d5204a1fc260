"""Documents after the call: generated prescription and sick-leave PDFs, uploads sent as
documents, corrections as new documents, and who may send and read them."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, timedelta

from pypdf import PdfReader

from server.clock import FakeClock
from server.models import Practice, User
from tests.helpers import Client, connect, make_secretary, valid_rpps
from tests.server.test_attachments import PDF, upload

MakeClient = Callable[[], Client]


async def _pdf_text(client: Client, url: str) -> str:
    async with client.session.get(client.server.make_url(url)) as resp:
        assert resp.status == 200 and resp.content_type == "application/pdf"
        data = await resp.read()
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


async def _give_practice(client: Client, user_id: str) -> None:
    async with client.services.sessionmaker() as db:
        practice = Practice(
            name="Cabinet des Lilas",
            address="12 rue des Lilas, 75011 Paris",
            created_at=client.services.clock.now(),
        )
        db.add(practice)
        await db.flush()
        user = await db.get(User, user_id)
        assert user is not None
        user.practice_id = practice.id
        user.birth_date = date(1990, 4, 2) if user.role == "patient" else user.birth_date
        await db.commit()


async def test_prescription_pdf_holds_doctor_patient_and_lines(
    doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    assert doctor.user and patient.user
    await _give_practice(doctor, doctor.user["id"])
    await _give_practice(doctor, patient.user["id"])
    lines = [
        "Paracétamol 1 g : 1 comprimé 3 fois par jour pendant 5 jours",
        "Ibuprofène 400 mg si douleur, au plus 3 par jour — pas plus de 3 jours",
    ]
    reply = await doctor.post(
        f"/api/conversations/{cid}/documents", {"kind": "prescription", "lines": lines}
    )
    assert reply.status == 201, reply
    message = reply.body
    assert message["body"].startswith("📄 Ordonnance du ")
    [attachment] = message["attachments"]
    assert attachment["content_type"] == "application/pdf"
    assert attachment["filename"].startswith("ordonnance-") and attachment["filename"].endswith(
        ".pdf"
    )
    assert message["document"]["kind"] == "prescription" and message["document"]["generated"]
    # The patient opens it from the conversation.
    [seen] = (await patient.get(f"/api/conversations/{cid}/messages")).body["items"]
    assert seen["id"] == message["id"]
    text = await _pdf_text(patient, attachment["url"])
    for expected in (
        "Dr Claire Martin",
        f"RPPS : {doctor.user['rpps']}",
        "12 rue des Lilas, 75011 Paris",
        "Éloïse DURAND",
        "02/04/1990",
        "ORDONNANCE",
        "1. Paracétamol 1 g",
        "2. Ibuprofène 400 mg",
        "téléconsultation",
    ):
        assert expected in text, (expected, text)
    listed = await patient.get(f"/api/conversations/{cid}/documents")
    assert [d["id"] for d in listed.body["items"]] == [message["document"]["id"]]


async def test_sick_leave_over_three_days_asks_the_treating_doctor_question(
    doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    refused = await doctor.post(
        f"/api/conversations/{cid}/documents", {"kind": "sick_leave", "sick_leave_days": 5}
    )
    assert refused.status == 422
    assert refused.body["code"] == "sick_leave_limit" and refused.body["max_days"] == 3
    assert "limité à 3 jours" in refused.body["detail"]
    assert (await patient.get(f"/api/conversations/{cid}/messages")).body["items"] == []
    three = await doctor.post(
        f"/api/conversations/{cid}/documents",
        {"kind": "sick_leave", "sick_leave_days": 3, "sick_leave_from": "2026-11-23"},
    )
    assert three.status == 201, three
    text = await _pdf_text(patient, three.body["attachments"][0]["url"])
    assert "AVIS D'ARRÊT DE TRAVAIL" in text
    assert "du 23/11/2026 au 25/11/2026 inclus (3 jours)" in text
    treating = await doctor.post(
        f"/api/conversations/{cid}/documents",
        {"kind": "sick_leave", "sick_leave_days": 7, "treating_doctor": True},
    )
    assert treating.status == 201, treating


async def test_correction_is_a_new_document_naming_the_old_one(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    first = await doctor.post(
        f"/api/conversations/{cid}/documents", {"kind": "prescription", "lines": ["Amoxicilline"]}
    )
    fixed = await doctor.post(
        f"/api/conversations/{cid}/documents",
        {
            "kind": "prescription",
            "lines": ["Amoxicilline 1 g matin et soir 6 jours"],
            "replaces_id": first.body["document"]["id"],
        },
    )
    assert fixed.status == 201
    assert fixed.body["document"]["replaces_id"] == first.body["document"]["id"]
    assert "remplace le document du" in fixed.body["body"]
    assert "annule et remplace : Ordonnance du" in await _pdf_text(
        patient, fixed.body["attachments"][0]["url"]
    )
    # The first one is still there, unchanged: nothing edits or deletes a sent document.
    old = await _pdf_text(patient, first.body["attachments"][0]["url"])
    assert "1. Amoxicilline" in old and "6 jours" not in old
    for method in ("PATCH", "PUT", "DELETE"):
        reply = await doctor.request(
            method, f"/api/conversations/{cid}/documents/{first.body['document']['id']}"
        )
        assert reply.status in (404, 405)
    # A document of another conversation cannot be "replaced" from here.
    other_patient = make_client()
    await other_patient.register(email="o@example.fr", first_name="O", last_name="P")
    other = await connect(doctor, other_patient)
    cross = await doctor.post(
        f"/api/conversations/{other}/documents",
        {"kind": "prescription", "lines": ["x"], "replaces_id": first.body["document"]["id"]},
    )
    assert cross.status == 422 and "replaces_id" in cross.body["detail"]


async def test_upload_sent_as_a_document_and_retry_is_idempotent(
    doctor: Client, patient: Client
) -> None:
    cid = await connect(doctor, patient)
    uploaded = await upload(doctor, PDF, "compte-rendu.pdf")
    body = {"kind": "other", "attachment_id": uploaded.body["id"], "client_id": "doc-1"}
    sent = await doctor.post(f"/api/conversations/{cid}/documents", body)
    assert sent.status == 201 and not sent.body["document"]["generated"]
    again = await doctor.post(f"/api/conversations/{cid}/documents", body)
    assert again.status == 200 and again.body["document"]["id"] == sent.body["document"]["id"]
    assert len((await patient.get(f"/api/conversations/{cid}/messages")).body["items"]) == 1


async def test_who_may_send(doctor: Client, patient: Client, make_client: MakeClient) -> None:
    cid = await connect(doctor, patient)
    by_patient = await patient.post(
        f"/api/conversations/{cid}/documents", {"kind": "prescription", "lines": ["x"]}
    )
    assert by_patient.status == 403
    stranger = make_client()
    await stranger.register(
        email="z@example.fr", first_name="Z", last_name="Z", role="doctor", rpps=valid_rpps(77)
    )
    by_stranger = await stranger.post(
        f"/api/conversations/{cid}/documents", {"kind": "prescription", "lines": ["x"]}
    )
    assert by_stranger.status == 404
    assert (await stranger.get(f"/api/conversations/{cid}/documents")).status == 404
    secretary = make_client()
    assert doctor.user
    await make_secretary(secretary, doctor.user["id"])
    generated = await secretary.post(
        f"/api/conversations/{cid}/documents", {"kind": "prescription", "lines": ["x"]}
    )
    assert generated.status == 403 and "médecin" in generated.body["detail"]
    uploaded = await upload(secretary, PDF, "resultats.pdf")
    forwarded = await secretary.post(
        f"/api/conversations/{cid}/documents",
        {"kind": "other", "attachment_id": uploaded.body["id"]},
    )
    assert forwarded.status == 201
    empty = await doctor.post(f"/api/conversations/{cid}/documents", {"kind": "prescription"})
    assert empty.status == 422 and "lines" in empty.body["detail"]
    too_long = await doctor.post(
        f"/api/conversations/{cid}/documents", {"kind": "prescription", "lines": ["x" * 501]}
    )
    assert too_long.status == 422


def test_pdf_without_a_unicode_font_spells_what_latin_1_lacks(monkeypatch: object) -> None:
    from datetime import datetime

    from server.documents import pdf

    monkeypatch.setattr(pdf, "_FONT_CANDIDATES", ())  # type: ignore[attr-defined]
    data = pdf.render(
        pdf.DocumentContent(
            kind="prescription",
            author=pdf.Author("Dr Zoé Lœvenbruck", "10000000008", None, None, None),
            patient=pdf.Person("Noël CŒUR", date(2001, 1, 2)),
            issued_at=datetime(2026, 11, 23, 10, 30),
            lines=("Sœur : 25 € → ‘remboursé’ …",),
        )
    )
    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert "Dr Zoé Loevenbruck" in text and "Noël COEUR" in text
    assert "1. Soeur : 25 EUR -> 'remboursé' ..." in text


async def test_the_patient_finds_every_document_of_every_conversation_newest_first(
    doctor: Client,
    patient: Client,
    make_client: Callable[[], Client],
    clock: FakeClock,
) -> None:
    """Two doctors, three documents: the patient's one list holds them all, each with who sent
    it; another patient and the other doctor see only their own."""
    other_doctor = make_client()
    await other_doctor.register(
        email="paul.roux@example.fr",
        first_name="Paul",
        last_name="Roux",
        role="doctor",
        rpps=valid_rpps(2),
    )
    first = await connect(doctor, patient)
    second = await connect(other_doctor, patient)
    sent = []
    for who, cid, kind in (
        (doctor, first, "prescription"),
        (other_doctor, second, "sick_leave"),
        (doctor, first, "prescription"),
    ):
        body: dict[str, object] = {"kind": kind}
        body.update(
            {"lines": ["Paracétamol 1 g"]} if kind == "prescription" else {"sick_leave_days": 2}
        )
        reply = await who.post(f"/api/conversations/{cid}/documents", body)
        assert reply.status == 201, reply
        sent.append(reply.body["document"]["id"])
        clock.advance(timedelta(minutes=5))
    mine = await patient.get("/api/documents")
    assert mine.status == 200
    assert [d["id"] for d in mine.body["items"]] == list(reversed(sent))
    assert [d["author"]["display_name"] for d in mine.body["items"]] == [
        "Dr Claire Martin",
        "Dr Paul Roux",
        "Dr Claire Martin",
    ]
    assert mine.body["items"][0]["filename"].endswith(".pdf")
    theirs = await other_doctor.get("/api/documents")
    assert [d["id"] for d in theirs.body["items"]] == [sent[1]]
    stranger = make_client()
    await stranger.register(email="x@example.fr", first_name="Xavier", last_name="Petit")
    assert (await stranger.get("/api/documents")).body["items"] == []
