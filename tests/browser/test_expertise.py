"""Tele-expertise in Chromium (issue 21): a GP on a phone asks a line for an opinion with a photo;
the expert of the day answers from a desktop page with a team template; both see it live."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from tests.browser.pages import signed_in_page
from tests.helpers import Client, valid_rpps
from tests.mail import free_port

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


async def served(start_server: Callable[..., Any]) -> tuple[str, TestServer]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    return base, await start_server(port=port, public_url=base)


async def doctor(
    server: TestServer,
    client_of: Callable[[TestServer], Client],
    n: int,
    email: str,
    first: str,
    last: str,
) -> Client:
    client = client_of(server)
    await client.register(
        email=email, first_name=first, last_name=last, role="doctor", rpps=valid_rpps(n)
    )
    return client


async def test_a_gp_on_a_phone_asks_and_the_expert_answers_live(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, server = await served(start_server)
    expert_api = await doctor(server, client_of, 61, "helene.sang@example.fr", "Hélène", "Sang")
    gp_api = await doctor(server, client_of, 62, "gaston.gp@example.fr", "Gaston", "Generaliste")
    colleague_api = await doctor(
        server, client_of, 64, "irene.interne@example.fr", "Irène", "Interne"
    )
    line = await expert_api.post(
        "/api/expertise/lines",
        {
            "name": "Hématologie du CHU",
            "specialty": "hématologie",
            "description": "Anomalies de l'hémogramme.",
            "instructions": "Joignez le dernier hémogramme.",
            "questionnaire": [
                {
                    "key": "followed",
                    "label": "Le patient est-il déjà suivi ?",
                    "type": "yes_no",
                    "required": True,
                }
            ],
            "delay_hours": 48,
        },
    )
    assert line.status == 201, line
    template = await expert_api.post(
        "/api/expertise/templates",
        {
            "title": "Contrôle",
            "body": "Contrôle de la NFS sur tube citraté.",
            "scope": "line",
            "line_id": line.body["id"],
        },
    )
    assert template.status == 201

    expert = await signed_in_page(browser, base, "helene.sang@example.fr")
    await expert.goto(f"{base}/expertise")
    await expect(expert.locator("#received-empty")).to_be_visible()

    gp = await signed_in_page(browser, base, "gaston.gp@example.fr", phone=True)
    await gp.goto(f"{base}/pro")
    await gp.get_by_role("link", name="Téléexpertise").click()
    await gp.get_by_role("tab", name="Demander un avis").click()
    await gp.get_by_label("Spécialité ou nom de la ligne").fill("hémato")
    await gp.get_by_role("button", name="Demander un avis à cette ligne").click()
    await expect(gp.locator("#ask-instructions")).to_have_text("Joignez le dernier hémogramme.")
    await gp.get_by_label("Prénom").fill("Marcel")
    await gp.get_by_label("Nom", exact=True).fill("Dupuis")
    await gp.get_by_label("Date de naissance").fill("02/03/1948")
    await gp.get_by_label("Le patient est-il déjà suivi ?").select_option("false")
    await gp.get_by_label("Votre question").fill("Thrombopénie à 85 G/L isolée, que faire ?")
    await gp.locator("#ask-files").set_input_files(
        {"name": "hemogramme.png", "mimeType": "image/png", "buffer": PNG}
    )
    send = gp.get_by_role("button", name="Envoyer la demande")
    await send.click()
    await expect(gp.locator("#consent-error")).to_contain_text("accord")  # not sent without it
    await gp.get_by_label("Le patient a été informé").check()
    await gp.screenshot(path=str(artifacts / "expertise-ask-phone.png"), full_page=True)
    await send.click()
    await expect(gp.locator("#r-title")).to_have_text("Marcel DUPUIS, né(e) le 02/03/1948")
    await expect(gp.locator("#r-status")).to_have_text("Ouverte")
    first = gp.locator("#request-thread .messages li").first
    await expect(first).to_contain_text("Thrombopénie à 85 G/L")
    await expect(first).to_contain_text("hemogramme.png")

    # The expert's inbox shows it without a reload.
    item = expert.locator("#received li", has_text="Marcel Dupuis")
    await expect(item).to_be_visible()
    await item.click()
    await expert.get_by_role("button", name="Je prends la demande").click()
    await expect(expert.locator("#r-status")).to_have_text("Prise en charge par Dr Hélène Sang")
    await expect(gp.locator("#r-status")).to_have_text("Prise en charge par Dr Hélène Sang")
    await expert.get_by_role("button", name="Répondre").click()
    await expert.get_by_label("Modèle", exact=True).select_option(label="Contrôle (équipe)")
    await expert.get_by_role("button", name="Insérer").click()
    await expect(expert.get_by_label("Votre avis")).to_have_value(
        "Contrôle de la NFS sur tube citraté."
    )
    # The text saved as a personal template; a colleague brought into the exchange.
    await expert.get_by_text("Enregistrer ce texte comme modèle").click()
    await expert.get_by_label("Titre du modèle").fill("NFS citratée")
    await expert.get_by_role("button", name="Enregistrer le modèle").click()
    await expect(expert.locator("#template-ok")).to_have_text("Modèle « NFS citratée » enregistré.")
    await expert.get_by_text("Ajouter un confrère à l'échange").click()
    await expert.get_by_label("Nom du confrère").fill("interne")
    await expert.locator("#participant-results").get_by_role("button", name="Ajouter").click()
    await expect(expert.locator("#participant-ok")).to_have_text(
        "Dr Irène Interne suit désormais l'échange."
    )
    await expert.screenshot(path=str(artifacts / "expertise-answer-desktop.png"), full_page=True)
    await expert.get_by_role("button", name="Envoyer l'avis et le compte rendu").click()
    await expect(expert.locator("#r-status")).to_have_text("Répondue")
    # The expert codes the TE2 (the NIR was not given with the request).
    await expect(expert.locator("#bill-proposal")).to_contain_text("TE2")
    await expect(expert.locator("#bill-proposal")).to_contain_text("23,00")
    await expert.get_by_label("N° de sécurité sociale du patient").fill("1 85 05 78 006 084 91")
    await expert.get_by_role("button", name="Enregistrer la cotation").click()
    await expect(expert.locator("#bill-done")).to_contain_text("Cotation enregistrée : TE2")

    # The GP sees the answer and the report arrive live.
    await expect(gp.locator("#r-status")).to_have_text("Répondue")
    messages = gp.locator("#request-thread .messages li")
    await expect(messages.filter(has_text="Avis : Contrôle de la NFS")).to_have_count(1)
    await expect(messages.filter(has_text="Compte rendu de téléexpertise")).to_have_count(1)
    await gp.screenshot(path=str(artifacts / "expertise-answered-phone.png"), full_page=True)
    await gp.get_by_role("button", name="Clôturer").click()
    await expect(gp.locator("#r-status")).to_have_text("Clôturée")
    templates = (await expert_api.get("/api/expertise/templates")).body["items"]
    assert {t["title"] for t in templates} == {"Contrôle", "NFS citratée"}
    requests = (await gp_api.get("/api/expertise/requests?box=sent")).body["items"]
    seen = await colleague_api.get(f"/api/expertise/requests/{requests[0]['id']}")
    assert seen.status == 200  # the colleague added to the exchange reads it


async def test_a_manager_sets_up_a_line_from_the_page(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, server = await served(start_server)
    await doctor(server, client_of, 61, "helene.sang@example.fr", "Hélène", "Sang")
    colleague_api = await doctor(server, client_of, 63, "bruno.garde@example.fr", "Bruno", "Garde")
    page = await signed_in_page(browser, base, "helene.sang@example.fr")
    await page.goto(f"{base}/expertise")
    await page.get_by_role("tab", name="Mes lignes").click()
    await expect(page.locator("#my-lines-empty")).to_be_visible()
    await page.get_by_label("Nom de la ligne", exact=True).fill("Dermatologie du CHU")
    await page.get_by_label("Spécialité", exact=True).fill("dermatologie")
    await page.get_by_label("Consignes aux demandeurs").fill("Photos nettes, de près et de loin.")
    await page.get_by_label("Demandes acceptées").fill("Lésion pigmentée\nÉruption de l'enfant\n")
    await page.get_by_label("Demandes exclues").fill("Brûlure étendue : appelez le 15")
    await page.get_by_label("Délai de réponse promis (heures)").fill("48")
    await page.get_by_label("Ajouter un membre").fill("garde")
    await page.locator("#l-member-results").get_by_role("button", name="Ajouter").click()
    await expect(page.locator("#l-members")).to_contain_text("Dr Bruno Garde")
    await page.get_by_label("Nouvelle question").fill("Depuis quand ?")
    await page.get_by_label("Réponse obligatoire").check()
    await page.get_by_role("button", name="Ajouter la question").click()
    await page.get_by_label("Lundi").select_option(label="Dr Bruno Garde")
    await page.get_by_role("button", name="Enregistrer la ligne").click()
    await expect(page.locator("#line-ok")).to_have_text("Ligne enregistrée.")
    await expect(page.locator("#my-lines li", has_text="Dermatologie du CHU")).to_contain_text(
        "Aucune demande ces douze derniers mois."
    )
    await page.screenshot(path=str(artifacts / "expertise-line-desktop.png"), full_page=True)
    lines = (await colleague_api.get("/api/expertise/lines?q=derma")).body["items"]
    assert len(lines) == 1
    line = lines[0]
    assert (
        line["instructions"] == "Photos nettes, de près et de loin." and line["delay_hours"] == 48
    )
    assert line["accepts"] == ["Lésion pigmentée", "Éruption de l'enfant"]
    assert line["excludes"] == ["Brûlure étendue : appelez le 15"]
    assert line["questionnaire"] == [
        {
            "key": "depuis_quand",
            "label": "Depuis quand ?",
            "type": "text",
            "choices": [],
            "required": True,
        }
    ]
    assert line["rota"]["mon"] == colleague_api.user["id"]  # type: ignore[index]
    assert {m["display_name"] for m in line["members"]} == {"Dr Hélène Sang", "Dr Bruno Garde"}
