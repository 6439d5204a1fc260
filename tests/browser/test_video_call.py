"""Video in real Chromium with fake camera and microphone: media must really flow, as each page's
own getStats() reports (decoded video frames, received audio packets) for every other peer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from tests.browser.pages import doctor_and_patient, signed_in_page
from tests.helpers import Client, valid_rpps

MEDIA_IN = """async () => {
  const out = [];
  for (const peer of window.__tc.peers.values()) {
    const report = await peer.pc.getStats();
    let video = 0, audio = 0;
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") video = s.framesDecoded || 0;
      if (s.type === "inbound-rtp" && s.kind === "audio") audio = s.packetsReceived || 0;
    });
    out.push({ video, audio });
  }
  return out;
}"""


async def media_from_everyone(page: Page, peers: int, within: float = 20) -> list[dict[str, int]]:
    """Wait until this page decodes video and receives audio from ``peers`` others."""
    deadline = time.monotonic() + within
    seen: list[dict[str, int]] = []
    while time.monotonic() < deadline:
        seen = await page.evaluate(MEDIA_IN)
        if len(seen) == peers and all(s["video"] > 10 and s["audio"] > 10 for s in seen):
            return seen
        await asyncio.sleep(0.5)
    raise AssertionError(f"media did not flow from {peers} peers within {within}s: {seen}")


async def test_doctor_calls_patient_joins_and_media_flows_both_ways(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, _, _, _ = await doctor_and_patient(start_server, client_of)
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    patient = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await doctor.locator("#conversations li", has_text="Éloïse Durand").click()
    await doctor.get_by_role("button", name="Lancer la vidéo").click()
    await expect(doctor).to_have_url(__import__("re").compile(rf"{base}/c/[0-9a-f]+"))
    await expect(doctor.locator("#check-camera")).to_have_class("ok")
    await doctor.get_by_role("button", name="Rejoindre la consultation").click()
    await expect(doctor.locator("#waiting")).to_be_visible()

    # The patient, on the home page, is rung and joins from the banner.
    sockets: list[str] = []
    patient.on("websocket", lambda ws: sockets.append(ws.url))
    await patient.get_by_role("link", name="Rejoindre").click()
    await expect(patient.locator("#title")).to_have_text("Téléconsultation avec Dr Claire Martin")
    await expect(patient.locator("#check-network")).to_have_class("ok")
    await patient.screenshot(path=str(artifacts / "call-check-phone.png"), full_page=True)

    # The device check is a waiting room: the connection is made, the doctor sees who is
    # arriving and the patient who is there, but nothing of the patient goes out before the click.
    arriving = doctor.locator(".remote.waiting")
    await expect(arriving).to_contain_text("vérifie sa caméra et son micro")
    await expect(patient.locator("#present")).to_have_text("Déjà dans l'appel : Dr Claire Martin.")
    await media_from_everyone(patient, 1)  # the doctor's picture is already arriving
    # The call page made one socket, opened as it started and then used by socket.io; its
    # connection's offer went out with its join, before the answer to it.
    assert [u for u in sockets if "/socket.io/" in u] == [
        f"{base}/socket.io/?EIO=4&transport=websocket".replace("http", "ws")
    ]
    steps = [name for name, _ in await patient.evaluate("window.__tc.timeline")]
    assert steps.count("offer-sent") == 1 and "join-sent" not in steps
    assert steps.index("offer-sent") < steps.index("join-ack") < steps.index("answer-received")
    await asyncio.sleep(1.5)
    [held] = await doctor.evaluate(MEDIA_IN)
    assert held == {"video": 0, "audio": 0}, held
    await patient.get_by_role("button", name="Rejoindre la consultation").click()
    await expect(arriving).to_have_count(0)

    doctor_in = await media_from_everyone(doctor, 1)
    patient_in = await media_from_everyone(patient, 1)
    print(f"doctor receives {doctor_in}, patient receives {patient_in}")
    await expect(doctor.locator("#waiting")).to_be_hidden()
    await patient.screenshot(path=str(artifacts / "call-patient-phone.png"))

    # Muting stops the audio the other side receives.
    await patient.get_by_role("button", name="Micro").click()
    await expect(patient.get_by_role("button", name="Micro coupé")).to_have_attribute(
        "aria-pressed", "true"
    )

    await doctor.evaluate("() => window.confirm = () => true")
    await doctor.get_by_role("button", name="Terminer pour tous").click()
    await expect(patient.locator("#ended")).to_be_visible()
    await expect(doctor.locator("#ended")).to_be_visible()


async def test_three_party_call_with_a_nurse(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, _, cid = await doctor_and_patient(start_server, client_of)
    nurse_api = client_of(doctor_api.server)
    await nurse_api.register(
        email="nina@example.fr",
        first_name="Nina",
        last_name="Nurse",
        role="nurse",
        rpps=valid_rpps(80),
    )
    call = (await doctor_api.post(f"/api/conversations/{cid}/calls", {})).body
    invited = await doctor_api.post(
        f"/api/calls/{call['id']}/invite-nurse",
        {"nurse_id": nurse_api.user["id"], "assistance": "remote"},
    )  # type: ignore[index]
    assert invited.status == 200
    pages = [
        await signed_in_page(browser, base, "claire.martin@example.fr"),
        await signed_in_page(browser, base, "eloise@example.fr", phone=True),
        await signed_in_page(browser, base, "nina@example.fr"),
    ]
    for page in pages[:2]:
        await page.goto(f"{base}/c/{call['id']}")
        await page.get_by_role("button", name="Rejoindre la consultation").click()
    # The nurse finds the call in her list of the day, with where she assists.
    nurse = pages[2]
    today = nurse.locator("#calls li", has_text="Éloïse Durand")
    await expect(today).to_contain_text("à distance")
    await nurse.screenshot(path=str(artifacts / "nurse-calls-of-the-day.png"), full_page=True)
    await today.get_by_role("link", name="Rejoindre").click()
    await nurse.get_by_role("button", name="Rejoindre la consultation").click()
    for page in pages:
        received = await media_from_everyone(page, 2, within=30)
        assert len(received) == 2
    shown = (await doctor_api.get(f"/api/calls/{call['id']}")).body
    assert sorted(p["user"]["role"] for p in shown["participants"]) == [
        "doctor",
        "nurse",
        "patient",
    ]


# A network whose proxy refuses WebSockets (some hospitals'): the browser's WebSocket fails as
# it opens, as it would on the proxy's refusal.
REFUSED_WEBSOCKETS = """window.WebSocket = class extends EventTarget {
  constructor(url) {
    super();
    this.url = url; this.readyState = 0;
    setTimeout(() => {
      this.readyState = 3;
      this.onerror?.(new Event("error"));
      this.onclose?.({ code: 1006, reason: "" });
    }, 20);
  }
  send() {}
  close() { this.readyState = 3; }
};"""


async def test_a_patient_whose_network_refuses_websockets_still_joins(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
) -> None:
    base, doctor_api, _, cid = await doctor_and_patient(start_server, client_of)
    call = (await doctor_api.post(f"/api/conversations/{cid}/calls", {})).body
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    patient = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await patient.context.add_init_script(REFUSED_WEBSOCKETS)
    await doctor.goto(call["join_url"])
    await doctor.get_by_role("button", name="Rejoindre la consultation").click()
    await patient.goto(call["join_url"])
    await patient.get_by_role("button", name="Rejoindre la consultation").click()
    await media_from_everyone(patient, 1)
    await media_from_everyone(doctor, 1)
    transport = await patient.evaluate("window.__tc.socket.io.engine.transport.name")
    assert transport == "polling"
    assert await doctor.evaluate("window.__tc.socket.io.engine.transport.name") == "websocket"
