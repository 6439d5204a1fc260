"""Reaching people in Chromium: a forgotten password reset from the sign-in page by the email
link (the open page of the old session goes to sign-in, saying why), and a push that the
service worker turns into a notification when the doctor starts a call."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from server.http.keys import SERVICES
from server.notify.loop import notify_once
from server.services import Services
from tests.browser.pages import PHONE, accept_privacy, doctor_and_patient, signed_in_page
from tests.helpers import Client
from tests.mail import free_port
from tests.push_service import PushService

NEW_PASSWORD = "le chat dort sur le canapé"


async def gone_from_the_page(services: Services, user_id: str) -> None:
    """Until the server has seen the last socket of the person close."""

    async def offline() -> None:
        while await services.events.online([user_id]):  # noqa: ASYNC110 (no event says it)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(offline(), 5)


def reset_link(outbox: Path) -> str:
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in outbox.iterdir()
        if p.suffix == ".eml"
    ]
    [message] = [m for m in messages if m["Subject"] == "Choisir un nouveau mot de passe"]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [link] = re.findall(r"http://127\.0\.0\.1:\d+/reset/[A-Za-z0-9_-]+", text)
    return str(link)


async def test_a_forgotten_password_is_reset_from_the_email_link(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    outbox: Path,
    artifacts: Path,
) -> None:
    base, doctor, _, _ = await doctor_and_patient(start_server, client_of)
    signed_in = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await expect(
        signed_in.locator("#conversations li", has_text="Dr Claire Martin")
    ).to_be_visible()

    context = await browser.new_context(locale="fr-FR", **PHONE)
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.get_by_role("link", name="Mot de passe oublié ?").click()
    await page.wait_for_url(f"{base}/forgot")
    await page.get_by_label("Adresse e-mail de votre compte").fill("eloise@example.fr")
    await page.get_by_role("button", name="Envoyer").click()
    await expect(page.get_by_role("status")).to_contain_text("Si un compte correspond")
    await page.screenshot(path=str(artifacts / "forgot-password-phone.png"))
    await notify_once(doctor.services)  # the link, and the doctor's connection request notice

    await page.goto(reset_link(outbox))
    await page.get_by_label("Nouveau mot de passe").fill(NEW_PASSWORD)
    await page.get_by_label("Le même, une seconde fois").fill(NEW_PASSWORD + "x")
    await page.get_by_role("button", name="Enregistrer le mot de passe").click()
    await expect(page.locator("#again-error")).to_have_text("Pas identique au premier.")
    await page.get_by_label("Le même, une seconde fois").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Enregistrer le mot de passe").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Votre mot de passe est changé. Connectez-vous avec le nouveau."
    )
    await page.screenshot(path=str(artifacts / "password-reset-done-phone.png"))

    # The page of the old session was told, on its own, and sent to sign in.
    await signed_in.wait_for_url(f"{base}/login?next=%2Fpatient")
    await expect(signed_in.get_by_role("status")).to_have_text(
        "Le mot de passe du compte vient d'être changé. Reconnectez-vous."
    )
    # The link served once: opening it again says so, without a form.
    await page.reload()
    await expect(page.get_by_role("alert")).to_contain_text("Ce lien n'est plus valable")
    await expect(page.locator("#reset")).to_be_hidden()

    await page.goto(f"{base}/login")
    await page.get_by_label("Adresse e-mail").fill("eloise@example.fr")
    await page.get_by_label("Mot de passe").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{base}/patient")
    await context.close()
    await signed_in.context.close()


async def test_a_push_becomes_a_notification_when_the_doctor_starts_a_call(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    push_service: PushService,
    artifacts: Path,
) -> None:
    base, doctor, patient, conversation_id = await doctor_and_patient(
        start_server, client_of, push_services=(push_service.origin,)
    )
    page = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await page.context.grant_permissions(["notifications"], origin=base)
    cdp = await page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    await cdp.send("ServiceWorker.enable")

    await page.get_by_role("link", name="Notifications").click()
    await page.wait_for_url(f"{base}/settings")
    await expect(page.locator("#device-state")).to_have_text(
        "Cet appareil ne reçoit pas encore vos notifications."
    )
    await page.get_by_role("button", name="Recevoir les notifications sur cet appareil").click()
    # The service worker registers; headless Chromium has no push service to subscribe to
    # (it would be Google's, out of reach here): the page says so in words.
    await expect(page.locator("#device-error")).to_have_text(
        "Le service de notifications de ce navigateur ne répond pas. "
        "Vous recevrez vos alertes par e-mail ou SMS."
    )
    await page.screenshot(path=str(artifacts / "notification-settings-phone.png"))
    worker = await page.evaluate(
        "async () => (await navigator.serviceWorker.getRegistration('/'))?.active?.scriptURL"
    )
    assert worker == f"{base}/sw.js"
    [registration] = {r["registrationId"]: r for r in registrations if not r["isDeleted"]}.values()

    # The subscription a push service would have given: our stand-in's, posted by the page.
    phone = push_service.new_browser()
    posted = await page.evaluate(
        """async (subscription) => (await fetch('/api/push/subscriptions', {
            method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify(subscription)})).status""",
        phone.subscription(),
    )
    assert posted == 201
    await page.goto(f"{base}/patient")  # the patient leaves the page… and closes it
    await page.goto("about:blank")
    await gone_from_the_page(doctor.services, patient.user["id"])  # type: ignore[index]

    await notify_once(doctor.services)  # the doctor's connection request notice
    started = await doctor.post(f"/api/conversations/{conversation_id}/calls", {"mode": "p2p"})
    assert started.status == 201
    assert await notify_once(doctor.services) == 1
    [payload] = phone.received
    assert push_service.refused == []
    # What the push service carried, decrypted, handed to the page's service worker.
    await page.goto(f"{base}/settings")
    await page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    shown = None
    # The DevTools delivery can be dropped while the worker starts up: hand it again, up to 3 times.
    for _ in range(3):
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": base,
                "registrationId": registration["registrationId"],
                "data": json.dumps(payload),
            },
        )
        shown = await page.evaluate(
            """async () => {
                const registration = await navigator.serviceWorker.ready;
                for (let i = 0; i < 100; i += 1) {
                    const found = await registration.getNotifications();
                    if (found.length) {
                        return found.map((n) => ({title: n.title, body: n.body, url: n.data.url,
                                                  tag: n.tag}));
                    }
                    await new Promise((resolve) => setTimeout(resolve, 50));
                }
                return null;
            }"""
        )
        if shown:
            break
    call_id = started.body["id"]
    assert shown == [
        {
            "title": "Dr Claire Martin vous attend en vidéo",
            "body": "Dr Claire Martin a ouvert votre téléconsultation vidéo et vous attend.",
            "url": f"{base}/c/{call_id}",
            "tag": f"call-{call_id}",
        }
    ]
    assert doctor.server.app[SERVICES] is doctor.services
    await page.context.close()


async def test_the_patient_home_lists_documents_and_payment_requests(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor, _, conversation_id = await doctor_and_patient(start_server, client_of)
    sent = await doctor.post(
        f"/api/conversations/{conversation_id}/documents",
        {"kind": "prescription", "lines": ["Paracétamol 1 g, 3 fois par jour"]},
    )
    assert sent.status == 201, sent
    asked = await doctor.post(
        f"/api/conversations/{conversation_id}/payment-requests",
        {"amount_cents": 2500, "currency": "EUR", "label": "Téléconsultation"},
    )
    assert asked.status == 201, asked
    page = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    papers = page.locator("#papers li")
    await expect(papers).to_have_count(2)
    # Newest first: the payment request, then the prescription, each saying who sent it.
    await expect(papers.nth(0)).to_contain_text("Téléconsultation · 25,00 €")
    await expect(papers.nth(0)).to_contain_text("À régler")
    await expect(papers.nth(1)).to_contain_text("Ordonnance")
    await expect(papers.nth(1)).to_contain_text("Dr Claire Martin")
    await papers.nth(0).get_by_role("link", name="Payer").click()
    await page.wait_for_url(f"{base}/p/{asked.body['id']}")
    await page.go_back()
    await expect(papers.nth(1).get_by_role("link", name="Ouvrir")).to_have_attribute(
        "href", f"/api/attachments/{sent.body['document']['attachment_id']}"
    )
    await page.screenshot(path=str(artifacts / "patient-documents-phone.png"), full_page=True)
    # The home offers alerts on this device once; "Non merci" is remembered.
    offer = page.locator("#push-offer")
    await expect(offer).to_contain_text("Être prévenu sur cet appareil")
    await offer.get_by_role("button", name="Non merci").click()
    await expect(offer).to_have_count(0)
    await page.reload()
    await expect(papers).to_have_count(2)
    await expect(offer).to_have_count(0)
    await page.context.close()


async def test_a_patient_who_signed_up_alone_confirms_the_address(
    browser: Browser,
    start_server: Callable[..., Any],
    outbox: Path,
    artifacts: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = await start_server(port=port, public_url=base)
    context = await browser.new_context(locale="fr-FR", **PHONE)
    page = await context.new_page()
    await page.goto(f"{base}/register")
    await page.get_by_label("Prénom").fill("Jeanne")
    await page.get_by_label("Nom", exact=True).fill("Moreau")
    await page.get_by_label("Adresse e-mail").fill("jeanne.moreau@example.fr")
    await page.get_by_label("Mot de passe").fill("un mot de passe solide")
    await accept_privacy(page)
    await page.get_by_role("button", name="Créer mon compte").click()
    await page.wait_for_url(f"{base}/patient")
    banner = page.locator("#verify-banner")
    await expect(banner).to_contain_text("nous avons envoyé un lien à jeanne.moreau@example.fr")
    await page.screenshot(path=str(artifacts / "confirm-address-banner-phone.png"))
    await notify_once(server.app[SERVICES])
    messages = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in outbox.iterdir()
        if p.suffix == ".eml"
    ]
    [mail] = [m for m in messages if m["Subject"] == "Confirmez votre adresse e-mail"]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [link] = re.findall(rf"{re.escape(base)}/verify/[A-Za-z0-9_-]+", text)
    await page.goto(link)
    await expect(page.get_by_role("status")).to_contain_text(
        "votre adresse jeanne.moreau@example.fr est confirmée"
    )
    await page.get_by_role("link", name="Aller à mon espace").click()
    await page.wait_for_url(f"{base}/patient")
    await expect(page.locator("#me")).not_to_be_empty()
    await expect(banner).to_have_count(0)
    await context.close()
