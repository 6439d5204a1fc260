"""What a practice sets about itself and what patients then see: payment details on the pay
page (IBAN and BIC checked), a document's preview that stores nothing, the privacy consent
recorded at sign-up (issue 26, items 7 and 10)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pypdf
from sqlalchemy import func, select

from server.models import Attachment, AuditEvent, Document, User
from tests.helpers import Client, connect, valid_rpps

MakeClient = Callable[[], Client]
IBAN = "FR7630006000011234567890189"


async def test_payment_details_are_checked_and_shown_on_the_pay_page(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    asked = await doctor.post(
        f"/api/conversations/{cid}/payment-requests",
        {"amount_cents": 3000, "label": "Téléconsultation", "client_id": "p1"},
    )
    assert asked.status == 201, asked
    before = await patient.get(f"/api/payment-requests/{asked.body['id']}")
    assert before.body["payee_details"]["iban"] is None

    # A typo in the IBAN (wrong check digits) or the BIC: refused, in French, beside the field.
    wrong = await doctor.put(
        "/api/me/payment-details", {"iban": "FR76 3000 6000 0112 3456 7890 180", "bic": "AGRI"}
    )
    assert wrong.status == 422, wrong
    fields = {e["field"]: e["detail"] for e in wrong.body["errors"]}
    assert "IBAN incorrect" in fields["iban"] and "BIC incorrect" in fields["bic"]
    assert (await doctor.get("/api/me/payment-details")).body["iban"] is None

    saved = await doctor.put(
        "/api/me/payment-details",
        {
            "holder": "  Dr Claire   Martin ",
            "iban": "fr76 3000 6000 0112 3456 7890 189",
            "bic": "agrifrpp",
            "phone": "01 23 45 67 89",
            "cheque_payee": "Dr Claire Martin",
            "address": "12 rue des Lilas\n\n75011 Paris  ",
        },
    )
    assert saved.status == 200, saved
    assert saved.body["iban"] == "FR76 3000 6000 0112 3456 7890 189"
    assert saved.body["bic"] == "AGRIFRPP" and saved.body["holder"] == "Dr Claire Martin"
    assert saved.body["phone"] == "+33123456789" and saved.body["phone_display"] == "01 23 45 67 89"
    assert saved.body["address"] == "12 rue des Lilas\n75011 Paris"

    shown = await patient.get(f"/api/payment-requests/{asked.body['id']}")
    assert shown.body["payee_details"]["iban"] == "FR76 3000 6000 0112 3456 7890 189"
    assert shown.body["payee_details"]["cheque_payee"] == "Dr Claire Martin"

    # An empty body (a cut connection) is refused, not read as "everything empty".
    for path in ("/api/me/payment-details", "/api/me/billing-profile"):
        empty = await doctor.request(
            "PUT", path, data=b"", headers={"Content-Type": "application/json"}
        )
        assert empty.status == 400 and "un PUT remplace" in empty.body["detail"], empty
    kept = await doctor.get("/api/me/payment-details")
    assert kept.body["iban"] == "FR76 3000 6000 0112 3456 7890 189"

    # Emptying a field removes it; the change of account is audited (last four characters).
    cleared = await doctor.put("/api/me/payment-details", {"holder": "Dr Claire Martin"})
    assert cleared.body["iban"] is None and cleared.body["phone"] is None
    async with doctor.services.sessionmaker() as db:
        events = (
            await db.scalars(
                select(AuditEvent).where(AuditEvent.action == "payment_details.updated")
            )
        ).all()
    afters = [(e.details or {}).get("iban_after") for e in events]
    assert sorted(afters, key=lambda v: v or "") == [None, "0189"]

    # Patients and others neither read nor set a practice's details.
    assert (await patient.get("/api/me/payment-details")).status == 403
    assert (await patient.put("/api/me/payment-details", {"iban": IBAN})).status == 403
    stranger = make_client()
    await stranger.register(email="autre@example.fr", first_name="Paul", last_name="Autre")
    assert (await stranger.get(f"/api/payment-requests/{asked.body['id']}")).status == 404


async def test_a_preview_is_the_document_marked_and_nothing_is_stored(
    doctor: Client, patient: Client, make_client: MakeClient
) -> None:
    cid = await connect(doctor, patient)
    body = {"kind": "prescription", "lines": ["Paracétamol 1 g, 3 fois par jour, 5 jours"]}
    async with doctor.services.sessionmaker() as db:
        attachments_before = await db.scalar(select(func.count()).select_from(Attachment))
    async with doctor.session.post(
        doctor.server.make_url(f"/api/conversations/{cid}/documents/preview"),
        json=body,
        headers={"Origin": doctor.origin},
    ) as resp:
        assert resp.status == 200 and resp.content_type == "application/pdf"
        assert resp.headers["Cache-Control"] == "no-store"
        data = await resp.read()
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)
    assert "Paracétamol 1 g" in text and "DURAND" in text and "APERÇU" in text
    async with doctor.services.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(Document)) == 0
        assert await db.scalar(select(func.count()).select_from(Attachment)) == attachments_before
    assert (await patient.get(f"/api/conversations/{cid}/messages")).body["items"] == []

    # The same checks as sending: nothing to preview, a patient, an outsider.
    empty = await doctor.post(
        f"/api/conversations/{cid}/documents/preview", {"kind": "prescription", "lines": []}
    )
    assert empty.status == 422 and "au moins une ligne" in empty.body["detail"]
    assert (await patient.post(f"/api/conversations/{cid}/documents/preview", body)).status == 403
    other = make_client()
    await other.register(
        email="jean.autre@example.fr",
        first_name="Jean",
        last_name="Autre",
        role="doctor",
        rpps=valid_rpps(77),
    )
    assert (await other.post(f"/api/conversations/{cid}/documents/preview", body)).status == 404


async def test_privacy_consent_is_recorded_at_sign_up(make_client: MakeClient) -> None:
    consenting, silent = make_client(), make_client()
    await consenting.register(
        email="a@example.fr", first_name="Anne", last_name="A", accept_privacy=True
    )
    await silent.register(email="b@example.fr", first_name="Bruno", last_name="B")
    assert consenting.user is not None and silent.user is not None
    assert consenting.user["privacy_accepted_at"] is not None
    assert silent.user["privacy_accepted_at"] is None
    async with consenting.services.sessionmaker() as db:
        user = await db.get(User, consenting.user["id"])
        assert user is not None and user.privacy_accepted_at is not None
