"""A patient downloads everything held about them from their settings page, on a phone
(issue 24, RGPD art. 15)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from tests.browser.pages import doctor_and_patient, signed_in_page
from tests.helpers import Client


async def test_a_patient_downloads_their_data_from_the_settings_page(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, _, cid = await doctor_and_patient(start_server, client_of)
    await doctor_api.post(
        f"/api/conversations/{cid}/messages", {"client_id": "m", "body": "Bonjour Éloïse"}
    )
    page = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await page.goto(f"{base}/settings")
    link = page.get_by_role("link", name="Télécharger mes données")
    await link.scroll_into_view_if_needed()
    await page.screenshot(path=str(artifacts / "my-data-phone.png"), full_page=True)
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    assert download.suggested_filename.startswith("mes-donnees-")
    archive = zipfile.ZipFile(await download.path())
    thread = next(n for n in archive.namelist() if n.startswith("conversations/"))
    messages = json.loads(archive.read(thread))["messages"]
    assert [m["texte"] for m in messages] == ["Bonjour Éloïse"]
    assert json.loads(archive.read("compte.json"))["compte"]["email"] == "eloise@example.fr"
    await expect(page.get_by_role("link", name="Notice sur vos données")).to_have_attribute(
        "href", "/confidentialite"
    )
