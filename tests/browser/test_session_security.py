"""Sign-in and sign-out as a person meets them in Chromium: no redirect off the site after
signing in, and a page whose session ended elsewhere goes to the sign-in page saying why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from tests.browser.pages import PHONE, accept_privacy, doctor_and_patient, signed_in_page
from tests.helpers import PASSWORD, Client, valid_rpps


async def test_signing_in_never_leads_off_the_site(
    browser: Browser, start_server: Callable[..., Any], client_of: Callable[[TestServer], Client]
) -> None:
    base, _, _, _ = await doctor_and_patient(start_server, client_of)
    context = await browser.new_context(locale="fr-FR", **PHONE)
    page = await context.new_page()
    for next_ in ("/\\evil.example", "//evil.example", "https://evil.example/", "/\\/evil.example"):
        await page.goto(f"{base}/login?next={quote(next_)}")
        await page.get_by_label("Adresse e-mail").fill("eloise@example.fr")
        await page.get_by_label("Mot de passe").fill(PASSWORD)
        await page.get_by_role("button", name="Se connecter").click()
        await page.wait_for_url(f"{base}/patient")
        await expect(page.locator("#me")).not_to_be_empty()  # the page has settled
    # A path of the site is still honoured.
    await page.goto(f"{base}/login?next={quote('/pro')}")
    await page.get_by_label("Adresse e-mail").fill("eloise@example.fr")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(lambda url: url.startswith(base))
    await context.close()


async def test_signing_out_everywhere_takes_the_open_page_to_sign_in(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, _, patient_api, _ = await doctor_and_patient(start_server, client_of)
    page = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await expect(page.locator("#conversations li", has_text="Dr Claire Martin")).to_be_visible()
    assert (await patient_api.post("/api/auth/logout-all")).status == 204
    await page.wait_for_url(f"{base}/login?next=%2Fpatient")
    notice = page.get_by_role("status")
    await expect(notice).to_have_text("Vous avez été déconnecté de tous vos appareils.")
    await page.screenshot(path=str(artifacts / "signed-out-everywhere-phone.png"))
    await page.context.close()


async def test_a_doctor_who_signed_up_alone_is_told_to_wait_for_approval(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, _, _, _ = await doctor_and_patient(start_server, client_of)
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{base}/register")
    await page.get_by_label("Vous êtes").select_option("doctor")
    await page.get_by_label("Prénom").fill("Gregory")
    await page.get_by_label("Nom", exact=True).fill("House")
    await page.get_by_label("Adresse e-mail").fill("house@example.fr")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_label("Numéro RPPS").fill(valid_rpps(88))
    await accept_privacy(page)
    await page.get_by_role("button", name="Créer mon compte").click()
    await page.wait_for_url(f"{base}/pro")
    await expect(
        page.get_by_role("heading", name="Compte en attente de validation")
    ).to_be_visible()
    await expect(page.get_by_role("tab", name="Invitations")).to_be_hidden()
    await page.screenshot(path=str(artifacts / "pending-professional-desktop.png"))
    await context.close()
