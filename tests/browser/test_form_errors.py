"""Errors a person can act on (issue 26): each field's error beside it, in plain French, the
field marked for screen readers and the focus on the first, on a phone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from tests.browser.pages import PHONE, accept_privacy, doctor_and_patient
from tests.helpers import Client
from tests.mail import free_port


async def test_sign_up_errors_sit_beside_their_fields(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, _, _, _ = await doctor_and_patient(start_server, client_of)
    context = await browser.new_context(locale="fr-FR", **PHONE)
    page = await context.new_page()
    await page.goto(f"{base}/register")
    await page.get_by_label("Nom", exact=True).fill("Durand")
    await page.get_by_label("Adresse e-mail").fill("jean durand@example")
    await page.get_by_label("Mot de passe").fill("court")
    await accept_privacy(page)
    await page.get_by_role("button", name="Créer mon compte").click()

    first_name = page.get_by_label("Prénom")
    await expect(first_name).to_be_focused()
    await expect(first_name).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#first_name-error")).to_have_text("Champ obligatoire.")
    await expect(page.locator("#email-error")).to_contain_text(
        "Adresse e-mail invalide : elle s'écrit comme nom@exemple.fr"
    )
    await expect(page.locator("#password-error")).to_be_visible()
    # No developer's notation anywhere: no field names, no quoted value.
    text = await page.locator("form").inner_text()
    assert not any(dev in text for dev in ("first_name", "email :", "password :", "('")), text
    await expect(page.get_by_role("alert")).to_have_text("Vérifiez les champs signalés en rouge.")
    await page.screenshot(path=str(artifacts / "register-errors-phone.png"), full_page=True)

    # Corrected, the marks go away with the next answer.
    await first_name.fill("Jean")
    await page.get_by_label("Adresse e-mail").fill("jean.durand@example.fr")
    await page.get_by_label("Mot de passe").fill("un mot de passe solide 42")
    await page.get_by_role("button", name="Créer mon compte").click()
    await expect(page).to_have_url(f"{base}/patient")
    await context.close()


async def test_a_birth_date_is_typed_the_french_way_whatever_the_browser_language(
    browser: Browser, start_server: Callable[..., Any]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    await start_server(port=port, public_url=base)
    # An English-language browser: a date input would read mm/dd/yyyy.
    context = await browser.new_context(locale="en-US", **PHONE)
    page = await context.new_page()
    await page.goto(f"{base}/register")
    await page.get_by_label("Prénom").fill("Jeanne")
    await page.get_by_label("Nom", exact=True).fill("Moreau")
    await page.get_by_label("Adresse e-mail").fill("jeanne.moreau@example.fr")
    await page.get_by_label("Mot de passe").fill("un mot de passe solide")
    birth = page.get_by_label("Date de naissance")
    await expect(birth).to_have_attribute("placeholder", "JJ/MM/AAAA")
    await birth.fill("11/31/1950")  # the American order: no 31st month
    await accept_privacy(page)
    await page.get_by_role("button", name="Créer mon compte").click()
    await expect(page.locator("#birth_date-error")).to_have_text(
        "Écrivez la date comme 23/11/1950 (jour, mois, année)."
    )
    await expect(birth).to_be_focused()
    await birth.fill("23/11/1950")
    await page.get_by_role("button", name="Créer mon compte").click()
    await page.wait_for_url(f"{base}/patient")
    me = await page.evaluate("async () => (await fetch('/api/me')).json()")
    assert me["birth_date"] == "1950-11-23"
    await context.close()
