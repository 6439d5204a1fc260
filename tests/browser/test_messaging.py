"""Two real browsers talk: messages appear without reload, the doctor's choices decide whether
the patient may answer, and a message sent during a network cut arrives once it is back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from tests.browser.pages import doctor_and_patient, signed_in_page
from tests.helpers import Client


async def test_doctor_and_patient_talk_in_real_time(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, _, _ = await doctor_and_patient(start_server, client_of)

    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    patient = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await doctor.locator("#conversations li", has_text="Éloïse Durand").click()
    await patient.locator("#conversations li", has_text="Dr Claire Martin").click()

    # Out of the box the patient does not start threads, and is told why.
    blocked = patient.get_by_test_id("blocked")
    await expect(blocked).to_contain_text("ne reçoit pas de nouveaux messages")
    await expect(patient.get_by_label("Votre message")).to_be_disabled()

    await doctor.get_by_label("Votre message").fill(
        f"Bonjour, avez-vous reçu vos résultats ? Ordonnance : {base}/static/css/app.css."
    )
    await doctor.get_by_role("button", name="Envoyer").click()
    await expect(patient.locator(".msg.theirs")).to_contain_text("avez-vous reçu vos résultats")
    await expect(blocked).to_be_hidden()
    # Addresses in a message are links, without the sentence's final full stop.
    link = patient.locator(".msg.theirs a", has_text="/static/css/app.css")
    await expect(link).to_have_attribute("href", f"{base}/static/css/app.css")
    await patient.get_by_label("Motif").select_option("test_result")
    await patient.get_by_label("Votre message").fill("Oui, tout est normal.")
    await patient.get_by_role("button", name="Envoyer").click()
    await expect(doctor.locator(".msg.theirs")).to_contain_text("Oui, tout est normal.")
    await expect(doctor.locator(".msg.theirs")).to_contain_text("Résultat d'examen")
    await expect(doctor.locator(".msg.mine .read-mark")).to_have_text("Lu")

    # A message that does not expect an answer closes the patient's composer, with the reason.
    await doctor.get_by_label("Le patient peut répondre").uncheck()
    await doctor.get_by_label("Votre message").fill("Parfait, bonne journée.")
    await doctor.get_by_role("button", name="Envoyer").click()
    await expect(blocked).to_contain_text("n'attend pas de réponse")
    await expect(patient.get_by_label("Votre message")).to_be_disabled()
    await patient.screenshot(path=str(artifacts / "patient-thread-blocked.png"), full_page=True)

    # The doctor opens the conversation; the patient's page follows at once.
    await doctor.get_by_label("Le patient peut écrire").select_option("true")
    await expect(patient.get_by_label("Votre message")).to_be_enabled()

    # A draft survives a reload.
    await patient.get_by_label("Votre message").fill("Brouillon à garder")
    await patient.reload()
    await expect(patient.get_by_label("Votre message")).to_have_value("Brouillon à garder")

    # Sent during a network cut: shown as sending, delivered when the network is back.
    await patient.context.set_offline(True)
    await patient.get_by_label("Votre message").fill("Envoyé hors connexion")
    await patient.get_by_role("button", name="Envoyer").click()
    await expect(patient.locator(".msg.pending")).to_contain_text("Envoi…")
    await patient.context.set_offline(False)
    await expect(doctor.locator(".msg.theirs", has_text="Envoyé hors connexion")).to_have_count(1)
    await expect(patient.locator(".msg.pending")).to_have_count(0)
    await expect(patient.locator(".msg.mine", has_text="Envoyé hors connexion")).to_have_count(1)
    await doctor.screenshot(path=str(artifacts / "doctor-thread.png"), full_page=True)

    # Nothing was doubled by the retry.
    [conversation] = (await doctor_api.get("/api/conversations")).body["items"]
    history = await doctor_api.get(f"/api/conversations/{conversation['id']}/messages")
    bodies = [m["body"] for m in history.body["items"]]
    assert bodies.count("Envoyé hors connexion") == 1
