"""The practice's own page and what follows from it, in Chromium (issue 26, items 7 and 10):
payment details a patient sees on the pay page, the billing profile the coding warnings point
to, a month's export with French headers, the preview of a prescription before it is sent, the
away-mode banner, the privacy notice and consent at sign-up."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pypdf
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from tests.browser.pages import PHONE, accept_privacy, doctor_and_patient, signed_in_page
from tests.helpers import Client
from tests.mail import free_port
from tests.server.test_billing import NIR, record_body, video_call


async def test_payment_details_set_by_the_doctor_are_on_the_patients_pay_page(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, _, cid = await doctor_and_patient(start_server, client_of)
    asked = await doctor_api.post(
        f"/api/conversations/{cid}/payment-requests",
        {"amount_cents": 3000, "label": "Téléconsultation du 23/11/2026", "client_id": "x"},
    )
    patient = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await patient.goto(f"{base}/p/{asked.body['id']}")
    await expect(patient.get_by_text("Autres moyens de paiement")).to_be_visible()
    await expect(patient.locator("#transfer")).to_be_hidden()  # nothing set yet

    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    await doctor.get_by_role("link", name="Mon cabinet").click()
    await expect(doctor).to_have_url(f"{base}/profile")
    await doctor.get_by_label("Titulaire du compte").fill("Dr Claire Martin")
    iban = doctor.get_by_label("IBAN")
    await iban.fill("FR76 3000 6000 0112 3456 7890 180")  # one digit wrong
    await doctor.get_by_label("Téléphone pour payer par carte").fill("01 23 45 67 89")
    await doctor.get_by_label("Chèque à l'ordre de").fill("Dr Claire Martin")
    await doctor.get_by_label("Adresse où envoyer un chèque").fill("12 rue des Lilas\n75011 Paris")
    save = doctor.locator("#payment").get_by_role("button", name="Enregistrer")
    await save.click()
    await expect(doctor.locator("#iban-error")).to_contain_text("IBAN incorrect")
    await expect(iban).to_be_focused()
    await iban.fill("FR76 3000 6000 0112 3456 7890 189")
    await save.click()
    await expect(doctor.locator("#payment-ok")).to_have_text("Enregistré.")
    await expect(doctor.locator("#iban-error")).to_have_count(0)
    await doctor.screenshot(path=str(artifacts / "profile-desktop.png"), full_page=True)

    await patient.reload()
    await expect(patient.locator("#iban")).to_have_text("FR76 3000 6000 0112 3456 7890 189")
    await expect(patient.locator("#holder")).to_have_text("Dr Claire Martin")
    await expect(patient.locator("#reference")).to_contain_text("Téléconsultation du 23/11/2026")
    phone = patient.get_by_role("link", name="01 23 45 67 89")
    await expect(phone).to_have_attribute("href", "tel:+33123456789")
    await expect(patient.locator("#cheque-address")).to_have_text("12 rue des Lilas\n75011 Paris")
    await patient.screenshot(path=str(artifacts / "pay-details-phone.png"), full_page=True)


async def test_billing_profile_warnings_and_the_month_export(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, patient_api, cid = await doctor_and_patient(start_server, client_of)
    call_id = await video_call(doctor_api, patient_api, cid)
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    # The after-call panel: the cap warning points to where the yearly acts are set.
    await doctor.goto(f"{base}/c/{call_id}")
    warning = doctor.locator("#bill-warnings li", has_text="Plafond annuel")
    await expect(warning).to_be_visible()
    link = warning.get_by_role("link", name="Ouvrir mon profil")
    await expect(link).to_have_attribute("href", "/profile#facturation")

    await doctor.goto(f"{base}/profile#facturation")
    await doctor.get_by_label("Numéro Assurance Maladie du cabinet").fill("751234567")
    await doctor.get_by_label("Code postal du cabinet").fill("75011")
    await doctor.get_by_label("Nombre annuel d'actes conventionnés").fill("4 500")
    await doctor.locator("#billing").get_by_role("button", name="Enregistrer").click()
    await expect(doctor.locator("#billing-ok")).to_have_text("Enregistré.")
    profile = (await doctor_api.get("/api/me/billing-profile")).body
    assert profile["am_number"] == "751234567" and profile["yearly_acts"] == 4500

    await doctor.goto(f"{base}/c/{call_id}")
    await expect(doctor.locator("#bill-acts li").first).to_contain_text("TCG")
    await expect(doctor.locator("#bill-warnings li", has_text="Plafond annuel")).to_have_count(0)

    saved = await doctor_api.post(
        f"/api/calls/{call_id}/billing", record_body("TCG", pathway="treating_doctor")
    )
    assert saved.status == 201, saved

    # A month's export from the practice page (the test clock says 23 November 2026).
    await doctor.goto(f"{base}/profile")
    await doctor.get_by_label("Mois").select_option(label="novembre")
    await doctor.get_by_label("Année").select_option("2026")
    await expect(doctor.locator("#export-summary")).to_have_text(
        "novembre 2026 : 1 consultation cotée, 1 acte, 25,00\u00a0€."
    )
    async with doctor.expect_download() as download_info:
        await doctor.get_by_role("link", name="Télécharger le CSV").click()
    download = await download_info.value
    assert download.suggested_filename == "facturation-2026-11-01-2026-11-30.csv"
    text = Path(await download.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert [r["Code acte"] for r in rows] == ["TCG"]
    assert rows[0]["Date de l'acte"] == "23/11/2026" and rows[0]["NIR du patient"] == NIR
    assert rows[0]["N° Assurance Maladie du cabinet"] == "751234567"
    await doctor.get_by_label("Mois").select_option(label="octobre")
    await expect(doctor.locator("#export-summary")).to_have_text(
        "octobre 2026 : aucune cotation enregistrée."
    )
    await doctor.screenshot(path=str(artifacts / "profile-export-desktop.png"), full_page=True)


async def test_the_doctor_previews_a_prescription_before_sending_it(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, patient_api, cid = await doctor_and_patient(start_server, client_of)
    call_id = await video_call(doctor_api, patient_api, cid, seconds=10)
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    refused: list[str] = []  # the page's CSP must let the frame show the blob
    doctor.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    await doctor.goto(f"{base}/c/{call_id}")
    await doctor.get_by_label("Lignes de l'ordonnance").fill(
        "Amoxicilline 1 g matin et soir, 6 jours"
    )
    async with doctor.expect_response(re.compile(r"/documents/preview$")) as answered:
        await doctor.get_by_role("button", name="Aperçu").click()
    response = await answered.value
    assert response.ok and response.headers["content-type"] == "application/pdf"
    # What the page asked for, drawn again by the server (the frame's blob is the page's own).
    sent_body = response.request.post_data_json
    assert sent_body["lines"] == ["Amoxicilline 1 g matin et soir, 6 jours"]
    again = await doctor.request.post(
        f"{base}/api/conversations/{cid}/documents/preview",
        data=sent_body,
        headers={"Origin": base},
    )
    assert again.ok, await again.text()
    data = await again.body()
    box = doctor.get_by_role("dialog", name="Aperçu du document")
    await expect(box).to_be_visible()
    src = await doctor.locator("#doc-preview-frame").get_attribute("src")
    assert src and src.startswith("blob:")
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages)
    assert "Amoxicilline 1 g" in text and "APERÇU" in text and "DURAND" in text
    await doctor.screenshot(path=str(artifacts / "prescription-preview-desktop.png"))
    assert refused == []
    # Seen, not sent: the patient has nothing yet.
    assert (await patient_api.get(f"/api/conversations/{cid}/documents")).body["items"] == []

    # "Corriger" goes back to the lines; the preview of the corrected text is sent from it.
    await box.get_by_role("button", name="Corriger").click()
    await expect(box).to_be_hidden()
    await expect(doctor.get_by_label("Lignes de l'ordonnance")).to_be_focused()
    await doctor.get_by_label("Lignes de l'ordonnance").fill(
        "Amoxicilline 1 g matin et soir, 7 jours"
    )
    await doctor.get_by_role("button", name="Aperçu").click()
    await box.get_by_role("button", name="Envoyer au patient").click()
    await expect(box).to_be_hidden()
    await expect(doctor.locator("#doc-sent li")).to_have_count(1)
    documents = (await patient_api.get(f"/api/conversations/{cid}/documents")).body["items"]
    assert len(documents) == 1 and documents[0]["kind"] == "prescription"
    async with patient_api.session.get(patient_api.server.make_url(documents[0]["url"])) as resp:
        sent = await resp.read()
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(sent)).pages)
    assert "7 jours" in text and "APERÇU" not in text


async def test_the_doctor_sees_the_away_mode_is_on(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, _, _ = await doctor_and_patient(start_server, client_of)
    now = doctor_api.services.clock.now()
    until = now + timedelta(days=400)  # after today's real date too: the page compares with it
    reply = await doctor_api.put(
        "/api/me/messaging",
        {
            "open": False,
            "away": {
                "from": (now - timedelta(days=1)).isoformat(),
                "until": until.isoformat(),
                "message": "En congés.",
                "exceptions": [],
            },
        },
    )
    assert reply.status == 200, reply
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    banner = doctor.locator("#away-banner")
    await expect(banner).to_be_visible()
    last_day = (until - timedelta(microseconds=1)).strftime("%d/%m/%Y")
    await expect(banner).to_contain_text(f"Mode absence en cours jusqu'au {last_day} inclus")
    await doctor.screenshot(path=str(artifacts / "pro-away-banner-desktop.png"))

    await banner.get_by_role("button", name="Modifier").click()
    await expect(doctor.get_by_label("Au, inclus")).to_have_value(last_day)
    await doctor.get_by_label("Au, inclus").fill("31/13/2027")
    save = doctor.locator("#messaging").get_by_role("button", name="Enregistrer")
    await save.click()
    await expect(doctor.locator("#away_until-error, #away-until-error")).to_contain_text(
        "Écrivez la date comme 20/12/2026"
    )
    await doctor.get_by_label("Je suis absent·e (congés)").uncheck()
    await save.click()
    await expect(doctor.locator("#messaging-ok")).to_be_visible()
    await expect(banner).to_be_hidden()
    assert (await doctor_api.get("/api/me/messaging")).body["away"] is None


async def test_sign_up_shows_the_privacy_notice_and_records_the_consent(
    browser: Browser, start_server: Callable[..., Any], artifacts: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    await start_server(port=port, public_url=base)
    context = await browser.new_context(locale="fr-FR", **PHONE)
    page = await context.new_page()
    await page.goto(f"{base}/register")
    await page.get_by_label("Prénom").fill("Jeanne")
    await page.get_by_label("Nom", exact=True).fill("Moreau")
    await page.get_by_label("Adresse e-mail").fill("jeanne.moreau@example.fr")
    await page.get_by_label("Mot de passe").fill("un mot de passe solide")
    await page.get_by_role("button", name="Créer mon compte").click()
    box = page.get_by_role("checkbox", name="J'ai lu la notice sur mes données")
    await expect(page.locator("#accept_privacy-error")).to_contain_text("Cochez cette case")
    await expect(box).to_be_focused()
    await expect(page).to_have_url(f"{base}/register")
    assert (await page.request.get(f"{base}/api/me")).status == 401  # no account, no session

    async with context.expect_page() as opened:
        await page.get_by_role("link", name="notice sur mes données").click()
    notice = await opened.value
    await expect(notice.get_by_role("heading", name="Vos droits")).to_be_visible()
    await expect(notice.locator("main")).to_contain_text("jamais enregistrés")
    await notice.screenshot(path=str(artifacts / "privacy-phone.png"), full_page=True)
    await notice.close()

    await accept_privacy(page)
    await page.get_by_role("button", name="Créer mon compte").click()
    await page.wait_for_url(f"{base}/patient")
    me = await page.evaluate("async () => (await fetch('/api/me')).json()")
    assert me["privacy_accepted_at"] is not None
    await context.close()
