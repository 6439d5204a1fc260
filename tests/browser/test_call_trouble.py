"""What the doctor sees of the patient's trouble, in real Chromium: the patient's device check
on their tile (a camera the browser refused), and on a link that really loses packets (the
patient's browser in its own network namespace, iptables random loss and a tbf rate limit),
the sound kept while the video is paused, said on the doctor's tile, and the video back once the
link recovers."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, async_playwright, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.netns import NetHost, test_host  # noqa: F401  (fixture)
from tests.browser.pages import doctor_and_patient, signed_in_page
from tests.browser.test_call_recovery import join
from tests.helpers import Client, connect, valid_rpps
from tests.mail import free_port

REFUSED_CAMERA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""

MEDIA_IN = """async () => {
  let video = 0, audio = 0;
  for (const peer of window.__tc.peers.values()) {
    (await peer.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") video += s.framesDecoded || 0;
      if (s.type === "inbound-rtp" && s.kind === "audio") audio += s.packetsReceived || 0;
    });
  }
  return { video, audio };
}"""


async def media_in(page: Page) -> dict[str, int]:
    return dict(await page.evaluate(MEDIA_IN))


async def test_the_doctor_sees_that_the_patients_browser_refused_the_camera(
    browser: Any,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, patient_api, cid = await doctor_and_patient(start_server, client_of)
    call = (await doctor_api.post(f"/api/conversations/{cid}/calls", {})).body
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    await doctor.goto(f"{base}/c/{call['id']}")
    await doctor.get_by_role("button", name="Rejoindre la consultation").click()
    patient = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await patient.context.add_init_script(REFUSED_CAMERA)
    await patient.goto(f"{base}/c/{call['id']}")
    await expect(patient.locator("#check-camera")).to_have_class("bad")
    await patient.get_by_role("button", name="Rejoindre quand même").click()
    tile = doctor.locator(".remote", has_text="Éloïse Durand")
    await expect(tile.locator(".notes")).to_contain_text("Caméra refusée par le navigateur")
    await expect(tile.locator(".notes")).to_contain_text("cadenas")
    await doctor.screenshot(path=str(artifacts / "doctor-sees-refused-camera.png"))
    # The same in the call's record, for the doctor; the patient sees only their own.
    seen = (await doctor_api.get(f"/api/calls/{call['id']}")).body
    patients = [p for p in seen["participants"] if p["role"] == "patient"]
    assert patients[0]["check"]["camera"] == "denied"
    assert any("cadenas" in line for line in patients[0]["check"]["problems"])
    own = (await patient_api.get(f"/api/calls/{call['id']}")).body
    doctor_entry = next(p for p in own["participants"] if p["role"] == "doctor")
    assert "check" not in doctor_entry and "quality" not in doctor_entry


def _iptables_loss(host: NetHost, probability: float, *, on: bool) -> None:
    verb = "-A" if on else "-D"
    for chain in ("INPUT", "OUTPUT"):
        host.run(
            "iptables", verb, chain, "-p", "udp", "-m", "statistic", "--mode", "random",
            "--probability", str(probability), "-j", "DROP",
        )  # fmt: skip


async def test_on_a_lossy_link_the_sound_stays_and_the_video_comes_back(
    test_host: NetHost,  # noqa: F811
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    tmp_path: Path,
    artifacts: Path,
) -> None:
    if shutil.which("iptables") is None:
        pytest.fail("iptables is needed to make the patient's link lose packets (.ci/run)")
    port = free_port()
    base = f"http://{test_host.host_ip}:{port}"
    server = await start_server(host=test_host.host_ip, port=port, public_url=base)
    doctor_api, patient_api = client_of(server), client_of(server)
    await doctor_api.register(
        email="dr@example.fr", first_name="Claire", last_name="Martin", role="doctor",
        rpps=valid_rpps(91),
    )  # fmt: skip
    await patient_api.register(email="p@example.fr", first_name="Jean", last_name="Dupont")
    cid = await connect(doctor_api, patient_api)
    call = (await doctor_api.post(f"/api/conversations/{cid}/calls", {})).body
    args = [*CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={base}"]
    async with async_playwright() as playwright:
        doctor_browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=args
        )
        patient_browser = await playwright.chromium.launch(
            executable_path=test_host.wrap(CHROMIUM, tmp_path), headless=True, args=args
        )
        try:
            doctor = await (await doctor_browser.new_context(locale="fr-FR")).new_page()
            patient = await (await patient_browser.new_context(locale="fr-FR")).new_page()
            await join(doctor, base, "dr@example.fr", call["id"])
            await join(patient, base, "p@example.fr", call["id"])
            tile = doctor.locator(".remote", has_text="Jean Dupont")
            await expect(tile.locator("video")).to_be_visible(timeout=20_000)
            # Up to a minute: on a loaded machine the browser's first bandwidth estimate can be
            # low enough for the page to hold its video a few seconds before the first images.
            started = time.monotonic()
            while (await media_in(doctor))["video"] < 60:
                assert time.monotonic() - started < 60, "no video before the loss"
                await asyncio.sleep(0.5)

            # A third of the patient's packets lost each way, and a narrow pipe.
            _iptables_loss(test_host, 0.35, on=True)
            test_host.run(
                "tc", "qdisc", "add", "dev", test_host.guest_link, "root",
                "tbf", "rate", "400kbit", "burst", "16kb", "latency", "80ms",
            )  # fmt: skip
            try:
                await expect(tile.locator(".notes")).to_contain_text(
                    "Vidéo suspendue", timeout=45_000
                )
                await expect(patient.locator("#link")).to_contain_text("suspendue")
                # Paused: the picture stops, the sound keeps coming.
                await asyncio.sleep(3)
                before = await media_in(doctor)
                await asyncio.sleep(6)
                during = await media_in(doctor)
                assert during["video"] - before["video"] < 15, (before, during)
                assert during["audio"] - before["audio"] > 100, (before, during)
                # Said once on the tile; the call's record has the patient's link too.
                await expect(tile.locator(".notes p")).to_have_count(1)
                record = (await doctor_api.get(f"/api/calls/{call['id']}")).body
                jean = next(p for p in record["participants"] if p["role"] == "patient")
                assert jean["quality"]["level"] in {"weak", "bad"}, jean["quality"]
                await doctor.screenshot(path=str(artifacts / "doctor-sees-paused-video.png"))
            finally:
                _iptables_loss(test_host, 0.35, on=False)
                test_host.run("tc", "qdisc", "del", "dev", test_host.guest_link, "root")
            # The link recovers: the video comes back (after the hold that avoids flapping).
            back = await media_in(doctor)
            lifted = time.monotonic()
            while (await media_in(doctor))["video"] - back["video"] < 60:
                assert time.monotonic() - lifted < 45, "the video did not come back"
                await asyncio.sleep(0.5)
            print(f"\nvideo back {time.monotonic() - lifted:.1f} s after the link recovered")
            await expect(tile.locator(".notes")).not_to_contain_text("Vidéo suspendue")
        finally:
            await doctor_browser.close()
            await patient_browser.close()
