"""After a real call in Chromium: the doctor's post-call panel sends a generated prescription and
a payment request, codes the act; the patient's phone shows both; the CSV export holds the act."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from server.clock import FakeClock
from tests.browser.pages import doctor_and_patient, signed_in_page
from tests.browser.test_video_call import media_from_everyone
from tests.helpers import Client

NIR = "2690299341732 85"


@contextlib.asynccontextmanager
async def clock_following_real_time(clock: FakeClock) -> AsyncIterator[None]:
    """The call record's quality samples are stamped by the server's clock: let the test clock
    run at real speed while media flows, so "video both ways for N seconds" is measured."""
    start, origin = time.monotonic(), clock.current

    async def tick() -> None:
        while True:
            clock.current = origin + timedelta(seconds=time.monotonic() - start)
            await asyncio.sleep(0.1)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_doctor_sends_prescription_and_payment_and_codes_the_act(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    clock: FakeClock,
    artifacts: Path,
) -> None:
    base, doctor_api, _, _ = await doctor_and_patient(start_server, client_of)
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    patient = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    async with clock_following_real_time(clock):
        await doctor.locator("#conversations li", has_text="Éloïse Durand").click()
        await doctor.get_by_role("button", name="Lancer la vidéo").click()
        await expect(doctor).to_have_url(re.compile(rf"{base}/c/[0-9a-f]+"))
        call_id = doctor.url.rsplit("/", 1)[1]
        await doctor.get_by_role("button", name="Rejoindre la consultation").click()
        await patient.get_by_role("link", name="Rejoindre").click()
        await patient.get_by_role("button", name="Rejoindre la consultation").click()
        await media_from_everyone(doctor, 1)
        await media_from_everyone(patient, 1)
        # Wait until the call record shows video both ways long enough to bill.
        deadline = time.monotonic() + 45
        seen = 0.0
        while time.monotonic() < deadline:
            seen = (await doctor_api.get(f"/api/calls/{call_id}")).body["video_both_ways_seconds"]
            if seen >= 12:
                break
            await asyncio.sleep(1)
        assert seen >= 12, f"video both ways only {seen}s"
        await doctor.evaluate("() => window.confirm = () => true")
        await doctor.get_by_role("button", name="Terminer pour tous").click()

    panel = doctor.locator("#after")
    await expect(panel).to_be_visible()
    # Documents: a prescription generated from the doctor's lines.
    await doctor.get_by_label("Lignes de l'ordonnance").fill(
        "Amoxicilline 1 g matin et soir pendant 6 jours\nParacétamol 1 g si fièvre"
    )
    await doctor.get_by_role("button", name="Envoyer le document").click()
    await expect(doctor.locator("#doc-sent")).to_contain_text("Ordonnance du")
    # Payment request, pre-filled with the proposed coding's amount.
    await expect(doctor.get_by_label("Montant (€)")).to_have_value("25,00")
    await doctor.get_by_role("button", name="Demander le paiement").click()
    await expect(doctor.locator("#pay-done")).to_contain_text("25,00")
    # Billing: TCG proposed; a typo in the NIR is caught, then the act is recorded.
    await expect(doctor.locator("#bill-acts")).to_contain_text("TCG")
    await doctor.get_by_label("Parcours de soins").select_option("treating_doctor")
    await doctor.get_by_label("NIR du patient").fill("2690299341732 84")
    await doctor.get_by_label("Date de naissance").fill("1969-02-14")
    await doctor.get_by_role("button", name="Valider la cotation").click()
    await expect(doctor.locator("#bill-errors")).to_contain_text("faute de frappe")
    await doctor.get_by_label("NIR du patient").fill(NIR)
    await doctor.get_by_role("button", name="Valider la cotation").click()
    await expect(doctor.locator("#bill-done")).to_contain_text("Cotation enregistrée : TCG")
    await doctor.screenshot(path=str(artifacts / "after-call-panel.png"), full_page=True)

    # The patient's phone shows the prescription and the payment request.
    await patient.goto(f"{base}/patient")
    await patient.locator("#conversations li", has_text="Dr Claire Martin").click()
    prescription = patient.locator(".msg.theirs", has_text="Ordonnance du")
    await expect(prescription).to_be_visible()
    await expect(prescription.locator("a", has_text="ordonnance-")).to_be_visible()
    payment = patient.locator(".msg.theirs", has_text="Demande de paiement : 25,00 €")
    await expect(payment).to_be_visible()
    await patient.screenshot(path=str(artifacts / "after-call-patient-phone.png"), full_page=True)
    # A button that says what it does, not a 60-character address (issue 26, item 7).
    pay_button = payment.get_by_role("link", name="Payer 25,00 €")
    await expect(pay_button).to_have_class(re.compile(r"\bbutton\b"))
    assert "/p/" not in (await payment.inner_text())
    pay_link = await pay_button.get_attribute("href")
    assert pay_link is not None and pay_link.startswith("/p/")
    await pay_button.click()
    await patient.wait_for_url(f"{base}{pay_link}")
    await expect(patient.locator("#amount")).to_have_text(re.compile(r"25,00\s€"))
    await expect(patient.locator("#label")).to_contain_text("Téléconsultation du")
    await expect(patient.get_by_text("Autres moyens de paiement")).to_be_visible()

    # The export for the billing software holds the act.
    href = await doctor.locator("#bill-done a").get_attribute("href")
    assert href is not None
    exported = await doctor.request.get(f"{base}{href}")
    assert exported.ok
    text = (await exported.body()).decode("utf-8-sig")
    header, row = text.strip().split("\r\n")
    assert "Code acte" in header and "Date de l'acte" in header
    assert ";TCG;" in row and ";2500;25,00;" in row and "269029934173285" in row

    # The doctor's list of what is owed; the practice confirms the card payment at its terminal.
    await doctor.goto(f"{base}/pro")
    owed = doctor.locator("#owed li", has_text="Éloïse Durand")
    await expect(owed).to_contain_text("25,00")
    await owed.get_by_label("Moyen de paiement").select_option("card_terminal")
    await owed.get_by_role("button", name="Marquer payé").click()
    await expect(doctor.locator("#owed-card")).to_be_hidden()
    await patient.reload()
    await expect(patient.locator("#status")).to_have_text("Payée — merci.")
