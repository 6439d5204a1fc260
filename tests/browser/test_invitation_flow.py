"""The whole "getting in touch" flow in real Chromium: a doctor invites through the page, the
email goes through real SMTP, the patient opens the link on a phone-sized screen, signs up and
accepts, and the doctor's page then shows the conversation and the invitation as accepted."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from tests.browser.pages import accept_privacy
from tests.helpers import PASSWORD, Client, valid_rpps
from tests.mail import SmtpServer, free_port

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def test_patient_accepts_an_emailed_invitation(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    smtp: SmtpServer,
    artifacts: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await start_server(port=port, public_url=base, smtp_url=smtp.url)
    await client_of(server).register(
        email="claire.martin@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(1),
    )

    doctor_context = await browser.new_context(locale="fr-FR")
    doctor = await doctor_context.new_page()
    await doctor.goto(f"{base}/login")
    await doctor.get_by_label("Adresse e-mail").fill("claire.martin@example.fr")
    await doctor.get_by_label("Mot de passe").fill(PASSWORD)
    await doctor.get_by_role("button", name="Se connecter").click()
    await expect(doctor).to_have_url(f"{base}/pro")
    await expect(doctor.locator("#me")).to_have_text("Dr Claire Martin")

    await doctor.get_by_role("tab", name="Invitations").click()
    await doctor.get_by_label("Prénom").fill("Éloïse")
    await doctor.get_by_label("Nom", exact=True).fill("Durand")
    await doctor.get_by_label("Adresse e-mail").fill("eloise.durand@example.fr")
    await doctor.get_by_role("button", name="Envoyer l'invitation").click()
    await expect(doctor.locator("#invite-ok")).to_contain_text(
        "Invitation envoyée à Éloïse Durand par e-mail"
    )
    invitation = doctor.locator("#invitations li").first
    await expect(invitation).to_contain_text("En attente")
    await expect(invitation).to_contain_text("Message : envoyée")

    [message] = smtp.inbox.messages
    body = message.get_body(("plain",))
    assert body is not None
    link = re.search(rf"{re.escape(base)}/i/[A-Za-z0-9_-]+", body.get_content())
    assert link is not None

    patient_context = await browser.new_context(locale="fr-FR", **PHONE)
    patient = await patient_context.new_page()
    await patient.goto(link.group(0))
    await expect(patient.locator("#invite-title")).to_have_text("Dr Claire Martin vous invite")
    await expect(patient.locator("#su-first")).to_have_value("Éloïse")
    await expect(patient.locator("#su-email")).to_have_value("eloise.durand@example.fr")
    await patient.screenshot(path=str(artifacts / "invitation-phone.png"), full_page=True)
    # A too-short password is refused with a readable reason, and nothing typed is lost.
    await patient.locator("#su-password").fill("court")
    await accept_privacy(patient)
    await patient.get_by_role("button", name="Créer mon compte et accepter").click()
    # The reason sits under the password field; the top says to look at it.
    await expect(patient.locator("#su-password-error")).to_contain_text("au moins 10 caractères")
    await expect(patient.locator("#su-password")).to_be_focused()
    await expect(patient.locator("#signup-error")).to_have_text(
        "Vérifiez le champ signalé en rouge."
    )
    await expect(patient.locator("#su-first")).to_have_value("Éloïse")
    await patient.locator("#su-password").fill(PASSWORD)
    await patient.get_by_role("button", name="Créer mon compte et accepter").click()
    await expect(patient.locator("#done-text")).to_contain_text("en relation avec Dr Claire Martin")
    await patient.get_by_role("link", name="Ouvrir mes conversations").click()
    await expect(patient).to_have_url(f"{base}/patient")
    await expect(patient.locator("#conversations li")).to_have_count(1)
    await expect(patient.locator("#conversations li")).to_contain_text("Dr Claire Martin")
    await patient.screenshot(path=str(artifacts / "patient-home-phone.png"), full_page=True)

    await doctor.get_by_role("tab", name="Invitations").click()
    await expect(invitation).to_contain_text("Acceptée")
    await doctor.get_by_role("tab", name="Conversations").click()
    await expect(doctor.locator("#conversations li")).to_contain_text("Éloïse Durand")
    await doctor.get_by_label("Rechercher un patient").fill("eloise")
    await expect(doctor.locator("#conversations li")).to_have_count(1)
    await doctor.get_by_label("Rechercher un patient").fill("zz")
    await expect(doctor.locator("#conversations li")).to_have_count(0)
    await expect(doctor.locator("#conversations-empty")).to_be_visible()
    await doctor.screenshot(path=str(artifacts / "doctor-workspace.png"), full_page=True)

    # The used link now says so instead of offering a second account.
    reopened = await (await browser.new_context()).new_page()
    await reopened.goto(link.group(0))
    await expect(reopened.locator("#accepted")).to_be_visible()


async def test_patient_registers_and_asks_a_doctor(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await start_server(port=port, public_url=base)
    await client_of(server).register(
        email="claire.martin@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(1),
    )
    patient = await (await browser.new_context(locale="fr-FR", **PHONE)).new_page()
    await patient.goto(f"{base}/register")
    await patient.get_by_label("Prénom").fill("Jean")
    await patient.get_by_label("Nom", exact=True).fill("Dupont")
    await patient.get_by_label("Adresse e-mail").fill("jean.dupont@example.fr")
    await patient.get_by_label("Mot de passe").fill(PASSWORD)
    await accept_privacy(patient)
    await patient.get_by_role("button", name="Créer mon compte").click()
    await expect(patient).to_have_url(f"{base}/patient")
    await patient.get_by_label("Nom du médecin").fill("martin")
    await patient.get_by_role("button", name="Rechercher").click()
    result = patient.locator("#practitioners li").first
    await expect(result).to_contain_text("Dr Claire Martin")
    await result.get_by_label("Message").fill("Suivi de ma tension")
    await result.get_by_role("button", name="Demander une mise en relation").click()
    await expect(result).to_contain_text("Demande envoyée")
    await expect(patient.locator("#requests li")).to_contain_text("En attente de réponse")

    doctor = await (await browser.new_context(locale="fr-FR")).new_page()
    await doctor.goto(f"{base}/login?next=/pro")
    await doctor.get_by_label("Adresse e-mail").fill("claire.martin@example.fr")
    await doctor.get_by_label("Mot de passe").fill(PASSWORD)
    await doctor.get_by_role("button", name="Se connecter").click()
    await expect(doctor.locator("#requests-banner")).to_contain_text(
        "1 demande de mise en relation"
    )
    await doctor.get_by_role("button", name="Voir").click()
    request = doctor.locator("#requests li").first
    await expect(request).to_contain_text("Suivi de ma tension")
    await request.get_by_role("button", name="Accepter").click()
    await expect(request).to_contain_text("Acceptée")
    await expect(doctor.locator("#requests-banner")).to_be_hidden()
    await doctor.get_by_role("tab", name="Conversations").click()
    await expect(doctor.locator("#conversations li")).to_contain_text("Jean Dupont")
    await patient.reload()
    await expect(patient.locator("#conversations li")).to_contain_text("Dr Claire Martin")
