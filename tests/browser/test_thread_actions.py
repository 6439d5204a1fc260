"""Links of this site to a call or a payment show as buttons that say what they do (issue 26,
item 7): a 70-year-old patient taps "Rejoindre la vidéo", not a 60-character address."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from tests.browser.pages import doctor_and_patient, signed_in_page
from tests.helpers import Client
from tests.server.test_attachments import PDF


async def test_the_call_link_in_the_thread_is_a_join_button(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor, _, conversation_id = await doctor_and_patient(start_server, client_of)
    written = await doctor.post(
        f"/api/conversations/{conversation_id}/messages",
        {"client_id": "look", "body": "Voyez https://example.org/c/abc123 pour les horaires."},
    )
    assert written.status == 201, written
    started = await doctor.post(f"/api/conversations/{conversation_id}/calls", {"mode": "p2p"})
    assert started.status == 201, started
    page = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    # Icons are drawn, not emoji (many practice computers have no emoji font: empty boxes).
    preview = page.locator("#conversations li", has_text="Dr Claire Martin")
    await expect(preview.locator("svg.icon-video")).to_be_visible()
    assert "📹" not in await preview.inner_text()
    await preview.click()
    await expect(page.get_by_role("heading", name="Dr Claire Martin")).to_be_visible()
    call_message = page.locator(".msg.theirs", has_text="Téléconsultation vidéo")
    join = call_message.get_by_role("link", name="Rejoindre la vidéo")
    await expect(join).to_be_visible()
    assert base not in await call_message.inner_text()
    await expect(call_message.locator("svg.icon-video")).to_be_visible()
    assert "📹" not in await call_message.inner_text()
    # Another site's link stays an address to read, never dressed as our button.
    foreign = page.locator(".msg.theirs", has_text="Voyez").get_by_role("link")
    await expect(foreign).to_have_text("https://example.org/c/abc123")
    await expect(foreign).not_to_have_class("button action")
    await page.screenshot(path=str(artifacts / "thread-join-button-phone.png"))
    await join.click()
    await page.wait_for_url(f"{base}/c/{started.body['id']}")
    await page.context.close()


async def test_a_file_too_large_or_of_another_type_is_refused_before_it_is_sent(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor, _, conversation_id = await doctor_and_patient(
        start_server, client_of, upload_max_bytes=4096
    )
    hello = await doctor.post(
        f"/api/conversations/{conversation_id}/messages", {"client_id": "hi", "body": "Bonjour"}
    )
    assert hello.status == 201
    page = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if "/api/uploads" in r.url else None)
    await page.locator("#conversations li", has_text="Dr Claire Martin").click()
    chooser = page.get_by_label("Joindre un fichier")
    # The composer opens once the conversation's details say the patient may write.
    await expect(chooser).to_be_enabled(timeout=15_000)
    await chooser.set_input_files(
        [
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"bonjour"},
            {"name": "radio.pdf", "mimeType": "application/pdf", "buffer": PDF + b"0" * 9000},
        ]
    )
    alerts = page.get_by_role("alert")
    await expect(alerts.filter(has_text="notes.txt")).to_have_text(
        "« notes.txt » n'est pas d'un format accepté. "
        "Formats acceptés : PDF, JPEG, PNG ou HEIC (photo d'iPhone)."
    )
    await expect(alerts.filter(has_text="radio.pdf")).to_contain_text(
        "est trop lourd (9 Ko) : 4 Ko au plus"
    )
    await page.screenshot(path=str(artifacts / "upload-refused-phone.png"))
    # Only the limits were asked: no file went up.
    assert [u for u in uploads if not u.endswith("/api/uploads/limits")] == []
    await chooser.set_input_files(
        [{"name": "ordonnance.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await expect(page.get_by_role("button", name="Retirer")).to_be_visible()
    assert any(u.endswith("/api/uploads") for u in uploads)
    await page.context.close()


async def test_a_cancelled_payment_request_no_longer_asks_to_pay(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
) -> None:
    base, doctor, _, conversation_id = await doctor_and_patient(start_server, client_of)
    asked = await doctor.post(
        f"/api/conversations/{conversation_id}/payment-requests",
        {"amount_cents": 3000, "currency": "EUR", "label": "Certificat"},
    )
    assert (await doctor.post(f"/api/payment-requests/{asked.body['id']}/cancel")).status == 200
    page = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await page.goto(f"{base}/p/{asked.body['id']}")
    card = page.locator("#request")
    await expect(card).to_contain_text("Dr Claire Martin vous avait demandé")
    await expect(page.get_by_role("status")).to_contain_text("annulée par le cabinet")
    text = await card.inner_text()
    assert "vous demande de régler" not in text and "à régler avant" not in text
    await expect(page.get_by_role("button", name="Payer")).to_have_count(0)
    await page.context.close()


async def test_a_call_started_before_the_page_opened_still_rings(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
) -> None:
    """The ring is a socket event: a page that was loading (or offline) when the doctor started
    the call asks on connecting, and the waiting doctor is not missed."""
    base, doctor, _, conversation_id = await doctor_and_patient(start_server, client_of)
    started = await doctor.post(f"/api/conversations/{conversation_id}/calls", {"mode": "p2p"})
    assert started.status == 201
    page = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    ring = page.locator(f'[data-ring="{started.body["id"]}"]')
    await expect(ring).to_contain_text("Dr Claire Martin vous invite en téléconsultation vidéo")
    await expect(page.locator(".banner.ring")).to_have_count(1)
    assert (await doctor.post(f"/api/calls/{started.body['id']}/end")).status == 200
    # Reloaded: the page asks again, hears of the ended call, and rings for nothing.
    async with page.expect_response(lambda r: r.url.endswith("/api/calls")) as asked:
        await page.reload()
    assert [c["status"] for c in (await (await asked.value).json())["items"]] == ["ended"]
    await page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")
    await expect(page.locator(".banner.ring")).to_have_count(0)
    await page.context.close()
