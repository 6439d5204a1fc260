"""An SFU call in real Chromium: doctor, patient and nurse each have one connection, to the
server, and each page decodes the two others' video and receives their audio; the server
forwards it as it came, without decoding or encoding any of it. The SFU runs in the app's
process, or in a media node of its own (``teleconsult media``)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, expect

from server.calls.keys import SFU_CALLS
from signaling.media_router import MediaRouter
from tests.browser.pages import doctor_and_patient, signed_in_page
from tests.helpers import Client, valid_rpps

STREAMS_IN = """async () => {
  const out = { connections: window.__tc.peers.size, video: [], audio: [] };
  for (const peer of window.__tc.peers.values()) {
    (await peer.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") out.video.push(s.framesDecoded || 0);
      if (s.type === "inbound-rtp" && s.kind === "audio") out.audio.push(s.packetsReceived || 0);
    });
  }
  return out;
}"""


async def streams_from(page: Page, others: int, within: float = 30) -> dict[str, Any]:
    """Wait until this page decodes ``others`` videos and receives ``others`` audio streams."""
    deadline = time.monotonic() + within
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = await page.evaluate(STREAMS_IN)
        video = [n for n in seen["video"] if n > 10]
        audio = [n for n in seen["audio"] if n > 10]
        if len(video) >= others and len(audio) >= others:
            return seen
        await asyncio.sleep(0.5)
    raise AssertionError(f"{others} streams did not arrive within {within}s: {seen}")


ROOT = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "prometheus-scraper-token"


async def scrape(client: Client) -> dict[str, float]:
    """``GET /metrics`` as Prometheus reads it: sample name (with its labels) → value."""
    reply = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert reply.status == 200, reply
    samples = [line.split(" ") for line in reply.body.splitlines() if not line.startswith("#")]
    return {name: float(value) for name, value in samples}


@pytest.fixture
async def media_node(tmp_path: Path) -> AsyncIterator[Callable[[str, MediaRouter], Any]]:
    """Starts ``teleconsult media`` against an app; stopped at the end."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(app_url: str, router: MediaRouter) -> asyncio.subprocess.Process:
        """Returns once the node has connected to the app whose ``router`` this is."""
        connected = len(router.nodes)
        env = {**os.environ, "TC_SECRET_KEY": "test-secret", "TC_DATA_DIR": str(tmp_path)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server",
            "media",
            "--app",
            app_url,
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        procs.append(proc)
        deadline = time.monotonic() + 20
        while len(router.nodes) <= connected:
            assert time.monotonic() < deadline, "the media node did not connect"
            await asyncio.sleep(0.1)
        return proc

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)


@pytest.mark.parametrize("where", ["app", "node"])
async def test_three_party_sfu_call(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    codec_work: dict[str, set[int]],
    media_node: Callable[[str, MediaRouter], Any],
    artifacts: Path,
    where: str,
) -> None:
    base, doctor_api, _, cid = await doctor_and_patient(
        start_server, client_of, metrics_token=METRICS_TOKEN
    )
    router = doctor_api.server.app[SFU_CALLS]
    if where == "node":
        await media_node(base, router)
    nurse_api = client_of(doctor_api.server)
    await nurse_api.register(
        email="nina@example.fr",
        first_name="Nina",
        last_name="Nurse",
        role="nurse",
        rpps=valid_rpps(81),
    )
    created = await doctor_api.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})
    assert created.status == 201 and created.body["mode"] == "sfu"
    call = created.body
    invited = await doctor_api.post(
        f"/api/calls/{call['id']}/invite-nurse",
        {"nurse_id": nurse_api.user["id"], "assistance": "remote"},  # type: ignore[index]
    )
    assert invited.status == 200
    pages = [
        await signed_in_page(browser, base, "claire.martin@example.fr"),
        await signed_in_page(browser, base, "eloise@example.fr", phone=True),
        await signed_in_page(browser, base, "nina@example.fr"),
    ]
    for page in pages:
        await page.goto(f"{base}/c/{call['id']}")
        await page.get_by_role("button", name="Rejoindre la consultation").click()
    for page in pages:
        seen = await streams_from(page, 2)
        assert seen["connections"] == 1  # one connection, to the server, whatever the number
        await expect(page.locator("#remotes .remote")).to_have_count(2)
    await pages[1].screenshot(path=str(artifacts / f"sfu-call-patient-phone-{where}.png"))
    names = await pages[0].locator("#remotes .remote .name").all_inner_texts()
    assert sorted(names) == ["Nina Nurse · infirmier·e", "Éloïse Durand · patient"]

    # On the server: every track was tapped and forwarded, and not one frame was decoded or
    # encoded in this process (the browsers did all the coding). With a media node, the app's
    # process does not even see the media.
    stats = await router.stats(call["id"])
    assert len(stats) == 6  # three participants × audio and video
    for publication in stats:
        assert publication["frames"] > 10, publication
        assert len(publication["subscribers"]) == 2
    assert codec_work == {"encode": set(), "decode": set()}
    assert (router.local.room(call["id"]) is None) == (where == "node")

    # The same figures for the call's members, over HTTP; nobody else sees them.
    shown = await doctor_api.get(f"/api/calls/{call['id']}/forwarding")
    assert shown.status == 200 and len(shown.body["tracks"]) == 6
    video = next(t for t in shown.body["tracks"] if t["kind"] == "video")
    assert all(s["frames"] > 10 for s in video["subscribers"].values())
    # Per track, what the server's receiver counted and what each subscriber was sent.
    assert video["packets"] >= video["frames"] and video["bitrate_kbps"] > 0
    assert video["packets_lost"] >= 0 and video["jitter_ms"] is not None
    assert all(s["packets"] >= s["frames"] for s in video["subscribers"].values())

    # The operators' view of the same: totals over the SFU (the app's, or its node's), with no
    # call or person in it.
    scraped = await scrape(doctor_api)
    assert scraped["teleconsult_sfu_nodes"] == (1 if where == "node" else 0)
    assert scraped["teleconsult_sfu_calls"] == 1 and scraped["teleconsult_sfu_participants"] == 3
    assert scraped['teleconsult_sfu_tracks{kind="video"}'] == 3
    assert scraped['teleconsult_sfu_subscriptions{kind="video"}'] == 6
    assert scraped['teleconsult_sfu_frames_forwarded_total{kind="video"}'] > 60
    assert scraped['teleconsult_sfu_bitrate_out_kbps{kind="video"}'] > 0
    assert scraped['teleconsult_sfu_packets_received_total{kind="audio"}'] > 0
    stranger = client_of(doctor_api.server)
    await stranger.register(email="s@example.fr", first_name="S", last_name="S")
    assert (await stranger.get(f"/api/calls/{call['id']}/forwarding")).status == 404

    # The nurse leaves: her tile goes from the others' pages, the call goes on, and the call
    # record keeps what was forwarded of her.
    await pages[2].get_by_role("button", name="Quitter").click()
    await pages[2].get_by_role("dialog").get_by_role("button", name="Quitter l'appel").click()
    for page in pages[:2]:
        await expect(page.locator("#remotes .remote")).to_have_count(1)
    assert len(await router.stats(call["id"])) == 4
    # Her tracks ended, and the counters kept what they carried.
    after = await scrape(doctor_api)
    assert after["teleconsult_sfu_participants"] == 2
    assert after['teleconsult_sfu_tracks{kind="video"}'] == 2
    for name, value in scraped.items():
        if name.split("{")[0].endswith("_total"):
            assert after[name] >= value, name
    record = (await doctor_api.get(f"/api/calls/{call['id']}")).body
    forwarded = [e for e in record["timeline"] if e["kind"] == "forwarded"]
    assert len(forwarded) == 1 and len(forwarded[0]["data"]["tracks"]) == 2
    assert all(t["packets"] > 0 and "bitrate_kbps" in t for t in forwarded[0]["data"]["tracks"])

    # She comes back (a reload: a new peer in the call). The server forwards her tracks to the
    # others again, and theirs to her, on the same one connection each.
    await pages[2].goto(f"{base}/c/{call['id']}")
    await pages[2].get_by_role("button", name="Rejoindre la consultation").click()
    back = await streams_from(pages[2], 2)
    assert back["connections"] == 1
    for page in pages[:2]:
        await expect(page.locator("#remotes .remote")).to_have_count(2)
        her = page.locator("#remotes .remote", has_text="Nina Nurse").locator("video")
        deadline = time.monotonic() + 20
        while await her.evaluate("v => v.getVideoPlaybackQuality().totalVideoFrames") < 10:
            assert time.monotonic() < deadline, "her picture did not come back"
            await asyncio.sleep(0.3)
        assert (await page.evaluate("window.__tc.peers.size")) == 1
    stats = await router.stats(call["id"])
    assert len(stats) == 6 and all(len(p["subscribers"]) == 2 for p in stats)
    assert codec_work == {"encode": set(), "decode": set()}


FRESH_VIDEO_IN = """() => {
  const sfu = window.__tc.peers.get("sfu");
  if (!sfu || sfu.pc.__before) return 0;  // still the connection to the node that stopped
  return sfu.pc.getStats().then((stats) => {
    let frames = 0;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
    return frames;
  });
}"""


async def test_a_call_whose_media_node_stops_goes_on(
    browser: Browser,
    start_server: Callable[..., Any],
    client_of: Callable[[TestServer], Client],
    media_node: Callable[[str, MediaRouter], Any],
    artifacts: Path,
) -> None:
    """The node running an SFU call dies: the app runs the call's SFU side itself (no other
    node), the pages join again on their own, and each decodes the other again; no reload."""
    base, doctor_api, _, cid = await doctor_and_patient(start_server, client_of)
    router = doctor_api.server.app[SFU_CALLS]
    node = await media_node(base, router)
    call = (await doctor_api.post(f"/api/conversations/{cid}/calls", {"mode": "sfu"})).body
    pages = [
        await signed_in_page(browser, base, "claire.martin@example.fr"),
        await signed_in_page(browser, base, "eloise@example.fr", phone=True),
    ]
    for page in pages:
        await page.goto(f"{base}/c/{call['id']}")
        await page.get_by_role("button", name="Rejoindre la consultation").click()
    for page in pages:
        await streams_from(page, 1)
    assert router.local.room(call["id"]) is None  # on the node

    for page in pages:
        await page.evaluate("() => { window.__tc.peers.get('sfu').pc.__before = true; }")
    node.kill()
    await node.wait()
    for page in pages:
        deadline = time.monotonic() + 30
        while await page.evaluate(FRESH_VIDEO_IN) < 10:
            assert time.monotonic() < deadline, "the picture did not come back after the node died"
            await asyncio.sleep(0.3)
        await expect(page.locator("#remotes .remote")).to_have_count(1)
        assert await page.evaluate("window.__tc.peers.size") == 1
        await expect(page.locator("#status")).to_be_hidden()  # no "reconnecting" left shown
    await pages[1].screenshot(path=str(artifacts / "sfu-call-after-node-stopped-phone.png"))
    room = router.local.room(call["id"])
    assert room is not None and len(room.participants) == 2
    # Still the same participants: nobody left the call, nobody was added.
    record = (await doctor_api.get(f"/api/calls/{call['id']}")).body
    assert len(record["participants"]) == 2
    assert all(p["left_at"] is None for p in record["participants"])
