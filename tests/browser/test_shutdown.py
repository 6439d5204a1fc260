"""``teleconsult serve`` stops promptly on SIGTERM (a deploy, a restart) even with browsers
connected: engine.io leaves each websocket open after its CLOSE packet until the browser closes
it, which a page that means to reconnect does not do, and the shutdown used to wait for those
connections until the watchdog killed the process (20 s, exit status 1)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from playwright.async_api import Browser

from tests.browser.pages import in_contact, signed_in_page
from tests.helpers import Client
from tests.mail import free_port
from tests.processes import Remote, serve, stop


async def test_the_server_stops_at_once_with_pages_connected(
    browser: Browser, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "TC_DATA_DIR": str(tmp_path), "TC_PUBLIC_URL": base}
    proc = await serve(port, env)
    doctor, patient = Client(Remote(port, env)), Client(Remote(port, env))  # type: ignore[arg-type]
    try:
        await in_contact(doctor, patient)
        pages = [
            await signed_in_page(browser, base, "claire.martin@example.fr"),
            await signed_in_page(browser, base, "eloise@example.fr", phone=True),
        ]
        for page in pages:  # each workspace with its websocket open and answered
            async with page.expect_websocket() as opened:
                await page.reload()
            websocket = await opened.value
            await websocket.wait_for_event("framereceived")
            assert not websocket.is_closed()
        began = time.monotonic()
        status = await stop(proc, within=25)
        assert status == 0, f"stopped with status {status} (its watchdog)"
        assert time.monotonic() - began < 5
    finally:
        await doctor.close()
        await patient.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
