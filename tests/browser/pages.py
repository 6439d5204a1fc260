"""Helpers for driving our pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from server.models import User
from tests.helpers import PASSWORD, Client, connect, valid_rpps
from tests.mail import free_port

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def accept_privacy(page: Page) -> None:
    """Ticks the privacy notice box of a sign-up form, as a person does before creating it."""
    await page.get_by_role("checkbox", name="J'ai lu la notice sur mes données").check()


async def signed_in_page(browser: Browser, base: str, email: str, *, phone: bool = False) -> Page:
    context = await browser.new_context(locale="fr-FR", **(PHONE if phone else {}))
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.get_by_label("Adresse e-mail").fill(email)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.locator("#me")).not_to_be_empty()
    return page


async def doctor_and_patient(
    start_server: Callable[..., Any], client_of: Callable[[TestServer], Client], **settings: Any
) -> tuple[str, Client, Client, str]:
    """A server on a real port (the pages' links point to it), a doctor and a patient already in
    contact: (base URL, doctor's API client, patient's API client, conversation id).
    ``settings``: changes to the server's settings."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await start_server(port=port, public_url=base, **settings)
    doctor, patient = client_of(server), client_of(server)
    return base, doctor, patient, await in_contact(doctor, patient)


async def in_contact(doctor: Client, patient: Client) -> str:
    """Registers Dr Claire Martin and Éloïse Durand (the pages sign in as them) through these
    clients and puts them in contact; returns their conversation's id."""
    await doctor.register(
        email="claire.martin@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(1),
    )
    await patient.register(email="eloise@example.fr", first_name="Éloïse", last_name="Durand")
    for client in (doctor, patient):
        await confirm_address(client)
    return await connect(doctor, patient)


async def confirm_address(client: Client) -> None:
    """As if the person had followed the confirmation link (tests/browser/test_reaching_people
    follows it for real): the pages then show no banner asking for it."""
    assert client.user is not None
    if not hasattr(client.server, "app"):
        return  # a server process of its own: its pages show the banner, which is harmless
    services = client.services
    async with services.sessionmaker() as db:
        user = await db.get(User, client.user["id"])
        assert user is not None
        user.email_verified_at = services.clock.now()
        await db.commit()
