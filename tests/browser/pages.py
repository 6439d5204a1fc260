"""Helpers for driving our pages."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.helpers import PASSWORD

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def signed_in_page(browser: Browser, base: str, email: str, *, phone: bool = False) -> Page:
    context = await browser.new_context(locale="fr-FR", **(PHONE if phone else {}))
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.get_by_label("Adresse e-mail").fill(email)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await expect(page.locator("#me")).not_to_be_empty()
    return page
