"""axe-core over every page a person meets, on a phone and on a desktop: no serious or critical
violation (WCAG 2.1 A and AA rules). Each page is also photographed at both sizes
(test-artifacts/pages/), for a person to look at."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import axe_playwright_python
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from tests.browser.pages import doctor_and_patient
from tests.helpers import PASSWORD, Client

AXE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 800}}
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


async def violations(page: Page) -> list[dict[str, Any]]:
    await page.evaluate(AXE)  # through the DevTools protocol: the pages' CSP does not apply
    result = await page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", RULES
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def sign_in(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("Adresse e-mail").fill(email)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.locator("#me")).not_to_be_empty()


@pytest.mark.parametrize("size", sorted(SIZES))
async def test_every_page_passes_axe(
    size: str,
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor, _, conversation_id = await doctor_and_patient(start_server, client_of)
    await doctor.post(
        f"/api/conversations/{conversation_id}/messages", {"client_id": "a", "body": "Bonjour"}
    )
    asked = await doctor.post(
        f"/api/conversations/{conversation_id}/payment-requests",
        {"amount_cents": 2500, "currency": "EUR", "label": "Téléconsultation"},
    )
    call = await doctor.post(f"/api/conversations/{conversation_id}/calls", {"mode": "p2p"})
    assert call.status == 201
    shots = artifacts / "pages"
    shots.mkdir(exist_ok=True)
    found: dict[str, list[dict[str, Any]]] = {}

    async def check(page: Page, name: str) -> None:
        await page.wait_for_load_state("networkidle")
        await page.screenshot(path=str(shots / f"{name}-{size}.png"), full_page=True)
        problems = await violations(page)
        if problems:
            found[name] = problems

    anonymous = await browser.new_context(locale="fr-FR", viewport=SIZES[size])
    page = await anonymous.new_page()
    # The check itself can fail: a field without a label is a serious violation.
    await page.set_content('<html lang="fr"><title>t</title><main><input></main></html>')
    assert [v["id"] for v in await violations(page)] == ["label"]
    for name, path in (
        ("login", "/login"),
        ("register", "/register"),
        ("forgot", "/forgot"),
        ("reset-invalid", "/reset/not-a-valid-token-at-all-0123456789"),
        ("verify-invalid", "/verify/not-a-valid-token-at-all-0123456789"),
        ("invitation-invalid", "/i/not-a-valid-token-at-all-0123456789"),
        ("privacy", "/confidentialite"),
    ):
        await page.goto(f"{base}{path}")
        await check(page, name)
    await anonymous.close()

    for who, email, pages in (
        (
            "patient",
            "eloise@example.fr",
            (
                ("home", "/patient"),
                ("thread", f"/patient#c={conversation_id}"),
                ("settings", "/settings"),
                ("payment", f"/p/{asked.body['id']}"),
                # The device check before joining a live call (fake camera and micro).
                ("call-prejoin", f"/c/{call.body['id']}"),
            ),
        ),
        (
            "doctor",
            "claire.martin@example.fr",
            (
                ("home", "/pro"),
                ("thread", f"/pro#c={conversation_id}"),
                ("settings", "/settings"),
                ("profile", "/profile"),
                ("expertise", "/expertise"),
                # The call ended: the after-call panel (documents, payment, coding).
                ("call-after", f"/c/{call.body['id']}"),
            ),
        ),
    ):
        if who == "doctor":
            ended = await doctor.post(f"/api/calls/{call.body['id']}/end")
            assert ended.status == 200
        context = await browser.new_context(locale="fr-FR", viewport=SIZES[size])
        page = await context.new_page()
        await sign_in(page, base, email)
        for name, path in pages:
            await page.goto(f"{base}{path}")
            await page.reload()  # a hash change alone does not reload the page
            await check(page, f"{who}-{name}")
        await context.close()
    assert found == {}, found
