"""A real network cut during a call: the patient's browser runs in its own network namespace and
its link goes down for 8 s (a tunnel, a lift). The doctor's decoded frames must stop growing
during the cut (proof the cut is real) and grow again after it, in the same call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Page, async_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.netns import NetHost, test_host  # noqa: F401  (fixture)
from tests.helpers import PASSWORD, Client, connect, valid_rpps
from tests.mail import free_port

FRAMES_IN = """async () => {
  let frames = 0;
  for (const peer of window.__tc.peers.values()) {
    (await peer.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
  }
  return frames;
}"""


async def frames(page: Page) -> int:
    return int(await page.evaluate(FRAMES_IN))


async def frames_grow(page: Page, by: int, within: float) -> float:
    """Seconds until the page has decoded ``by`` more frames; fails after ``within``."""
    start_frames, started = await frames(page), time.monotonic()
    while time.monotonic() - started < within:
        if await frames(page) - start_frames >= by:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise AssertionError(f"fewer than {by} new frames in {within} s")


async def join(page: Page, base: str, email: str, call_id: str) -> None:
    # Straight from sign-in to the call, as the patient's link does.
    await page.goto(f"{base}/login?next=/c/{call_id}")
    await page.get_by_label("Adresse e-mail").fill(email)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.get_by_role("button", name="Rejoindre la consultation").click()


async def _call_across_the_link(
    test_host: NetHost,  # noqa: F811
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    tmp_path: Path,
    cut: Callable[[], Awaitable[None]],
    before_close: Callable[[], None] | None = None,
) -> str:
    """A call between a doctor on this machine and a patient in the namespace; ``cut`` breaks and
    restores the patient's network; media must flow again both ways, in the same call."""
    port = free_port()
    base = f"http://{test_host.host_ip}:{port}"
    server = await start_server(host=test_host.host_ip, port=port, public_url=base)
    doctor_api, patient_api = client_of(server), client_of(server)
    await doctor_api.register(
        email="dr@example.fr",
        first_name="Claire",
        last_name="Martin",
        role="doctor",
        rpps=valid_rpps(90),
    )
    await patient_api.register(email="p@example.fr", first_name="Jean", last_name="Dupont")
    cid = await connect(doctor_api, patient_api)
    call = (await doctor_api.post(f"/api/conversations/{cid}/calls", {})).body
    # Cameras need a secure origin; this test origin is plain http on our own test address.
    args = [*CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={base}"]
    async with async_playwright() as playwright:
        doctor_browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=args
        )
        patient_browser = await playwright.chromium.launch(
            executable_path=test_host.wrap(CHROMIUM, tmp_path), headless=True, args=args
        )
        try:
            doctor = await (await doctor_browser.new_context()).new_page()
            patient = await (await patient_browser.new_context()).new_page()
            await join(doctor, base, "dr@example.fr", call["id"])
            await join(patient, base, "p@example.fr", call["id"])
            await frames_grow(doctor, 40, within=20)
            await frames_grow(patient, 40, within=20)

            test_host.link(up=False)
            await asyncio.sleep(2)  # frames already in flight drain
            before = await frames(doctor)
            await asyncio.sleep(6)
            stalled = await frames(doctor) - before
            assert stalled < 10, f"the cut did not stop the media ({stalled} frames in 6 s)"
            await cut()
            test_host.link(up=True)
            recovery = await frames_grow(doctor, 40, within=40)
            patient_recovery = await frames_grow(patient, 40, within=30)
            restarts = [
                await p.evaluate("() => window.__tc.restarts || 0") for p in (doctor, patient)
            ]
            shown = (await doctor_api.get(f"/api/calls/{call['id']}")).body
            assert shown["status"] == "active"  # the same call, not a new one
            return (
                f"media back {recovery:.1f} s after the link returned (8 s outage); patient "
                f"receiving again {patient_recovery:.1f} s later; ICE restarts {restarts}"
            )
        finally:
            if before_close is not None:
                before_close()
            await doctor_browser.close()
            await patient_browser.close()


async def test_media_comes_back_after_a_real_network_cut(
    test_host: NetHost,  # noqa: F811
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    tmp_path: Path,
) -> None:
    async def nothing_else() -> None:
        return None

    print(
        "\nsame address:",
        await _call_across_the_link(test_host, start_server, client_of, tmp_path, nothing_else),
    )


async def test_media_comes_back_on_a_new_address(
    test_host: NetHost,  # noqa: F811
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    tmp_path: Path,
) -> None:
    """Wi-Fi → 4G: the patient's old address disappears; only an ICE restart (or a new peer
    connection) over a reconnected signaling socket brings the media back."""

    async def new_address() -> None:
        test_host.move(test_host.guest_ip.rsplit(".", 1)[0] + ".3")

    print(
        "\nnew address:",
        await _call_across_the_link(test_host, start_server, client_of, tmp_path, new_address),
    )
