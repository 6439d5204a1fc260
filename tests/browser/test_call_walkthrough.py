"""What a patient and a doctor meet in a call, in real Chromium (issue 26): leaving is not
ending, who arrives is said with their role, and an ended call's page never asks for the camera."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from tests.browser.pages import doctor_and_patient, signed_in_page
from tests.helpers import Client, valid_rpps

COUNT_CAMERA_REQUESTS = """
window.__cameraAsked = 0;
if (navigator.mediaDevices) {
  const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (...args) => {
    window.__cameraAsked += 1;
    return ask(...args);
  };
}
"""


async def in_the_call(page: Page, base: str, call_id: str) -> None:
    await page.goto(f"{base}/c/{call_id}")
    await page.get_by_role("button", name="Rejoindre la consultation").click()


async def test_leaving_is_not_ending_and_the_patient_can_come_back(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, _, cid = await doctor_and_patient(start_server, client_of)
    call = (await doctor_api.post(f"/api/conversations/{cid}/calls", {})).body
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    patient = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await in_the_call(doctor, base, call["id"])
    await in_the_call(patient, base, call["id"])
    # Who arrives is said, with their role, and their tile names them.
    await expect(doctor.locator("#announce")).to_have_text(
        "Éloïse Durand (patient) rejoint l'appel."
    )
    await expect(doctor.locator(".remote .name")).to_have_text("Éloïse Durand · patient")

    await patient.get_by_role("button", name="Quitter").click()
    dialog = patient.get_by_role("dialog", name="Quitter l'appel ?")
    await expect(dialog).to_contain_text(
        "Dr Claire Martin reste dans l'appel ; vous pourrez revenir."
    )
    await patient.screenshot(path=str(artifacts / "call-leave-confirm-phone.png"))
    await dialog.get_by_role("button", name="Rester").click()
    await expect(dialog).to_be_hidden()
    await expect(patient.locator("#call-screen")).to_be_visible()  # nothing happened

    await patient.get_by_role("button", name="Quitter").click()
    await dialog.get_by_role("button", name="Quitter l'appel").click()
    left = patient.locator("#left")
    await expect(left).to_contain_text("Dr Claire Martin est toujours dans la consultation.")
    await expect(patient.get_by_text("La consultation est terminée")).to_be_hidden()
    back_to_thread = left.get_by_role("link", name="Retour à la conversation")
    await expect(back_to_thread).to_have_attribute("href", f"/patient#c={cid}")
    await patient.screenshot(path=str(artifacts / "call-left-phone.png"))
    await expect(doctor.locator("#announce")).to_have_text("Éloïse Durand a quitté l'appel.")
    assert (await doctor_api.get(f"/api/calls/{call['id']}")).body["status"] == "active"

    await left.get_by_role("button", name="Revenir dans l'appel").click()
    await patient.get_by_role("button", name="Rejoindre la consultation").click()
    await expect(doctor.locator("#announce")).to_have_text(
        "Éloïse Durand (patient) rejoint l'appel."
    )
    await expect(doctor.locator(".remote video")).to_be_visible()


async def test_the_nurse_who_arrives_is_announced_with_her_role(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, _, cid = await doctor_and_patient(start_server, client_of)
    nurse_api = client_of(doctor_api.server)
    await nurse_api.register(
        email="nina@example.fr", first_name="Nina", last_name="Petit", role="nurse",
        rpps=valid_rpps(61),
    )  # fmt: skip
    call = (await doctor_api.post(f"/api/conversations/{cid}/calls", {})).body
    invited = await doctor_api.post(
        f"/api/calls/{call['id']}/invite-nurse",
        {"nurse_id": nurse_api.user["id"], "assistance": "remote"},  # type: ignore[index]
    )
    assert invited.status == 200
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    nurse = await signed_in_page(browser, base, "nina@example.fr")
    await in_the_call(doctor, base, call["id"])
    await in_the_call(nurse, base, call["id"])
    await expect(doctor.locator("#announce")).to_have_text(
        "Nina Petit (infirmier·e) rejoint l'appel."
    )
    await expect(doctor.locator(".remote .name")).to_have_text("Nina Petit · infirmier·e")
    await doctor.screenshot(path=str(artifacts / "call-nurse-arrives-desktop.png"))


async def test_an_ended_calls_page_never_asks_for_the_camera(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, _, cid = await doctor_and_patient(start_server, client_of)
    call = (await doctor_api.post(f"/api/conversations/{cid}/calls", {})).body
    assert (await doctor_api.post(f"/api/calls/{call['id']}/end")).status == 200
    patient = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await patient.context.add_init_script(COUNT_CAMERA_REQUESTS)
    await patient.goto(f"{base}/c/{call['id']}")
    ended = patient.locator("#ended")
    await expect(ended).to_contain_text("La consultation est terminée")
    await expect(ended.get_by_role("link", name="Retour à la conversation")).to_have_attribute(
        "href", f"/patient#c={cid}"
    )
    await expect(patient.locator("#check")).to_be_hidden()
    assert await patient.evaluate("window.__cameraAsked") == 0
    await patient.screenshot(path=str(artifacts / "call-ended-phone.png"))
    # The doctor's after-call panel: documents, payment and coding, no camera either.
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    await doctor.context.add_init_script(COUNT_CAMERA_REQUESTS)
    await doctor.goto(f"{base}/c/{call['id']}")
    await expect(doctor.locator("#after")).to_be_visible()
    await expect(doctor).to_have_url(re.compile(rf"/c/{call['id']}$"))
    assert await doctor.evaluate("window.__cameraAsked") == 0


async def test_a_second_tab_takes_the_call_and_the_first_steps_aside(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    artifacts: Path,
) -> None:
    base, doctor_api, _, cid = await doctor_and_patient(start_server, client_of)
    call = (await doctor_api.post(f"/api/conversations/{cid}/calls", {})).body
    doctor = await signed_in_page(browser, base, "claire.martin@example.fr")
    first = await signed_in_page(browser, base, "eloise@example.fr", phone=True)
    await in_the_call(doctor, base, call["id"])
    await in_the_call(first, base, call["id"])
    await expect(doctor.locator(".remote video")).to_be_visible()
    second = await first.context.new_page()  # the same person, another tab
    await in_the_call(second, base, call["id"])
    aside = first.locator("#replaced")
    await expect(aside).to_contain_text("Vous êtes dans l'appel sur un autre écran")
    await expect(first.locator("#call-screen")).to_be_hidden()
    await first.screenshot(path=str(artifacts / "call-replaced-phone.png"))
    # One Éloïse in the doctor's call, and the departure of the old tab is not announced.
    await expect(doctor.locator(".remote")).to_have_count(1)
    await expect(doctor.locator("#announce")).not_to_contain_text("a quitté")
    record = (await doctor_api.get(f"/api/calls/{call['id']}")).body
    assert [p["role"] for p in record["participants"]] == ["doctor", "patient"]
