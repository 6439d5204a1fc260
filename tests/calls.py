"""Calls as the pages make them, over socket.io: tabs that join and report, every 5 s (of the
test's clock), what they decoded from and sent to each other participant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tests.helpers import Client
from tests.signaling.sockets import Tab


async def in_call(client: Client, call_id: str) -> Tab:
    tab = Tab(client)
    await tab.connect()
    reply: dict[str, Any] = await tab.sio.call("call:join", {"call_id": call_id}, timeout=5)
    assert reply["ok"], reply
    tab.peer_id = reply["peer_id"]  # type: ignore[attr-defined]
    return tab


@dataclass
class Link:
    """``tab`` reports about ``about``: frames decoded from it and sent to it per second."""

    tab: Tab
    about: Tab
    decoded_fps: int = 30
    sent_fps: int = 30
    decoded: int = 0
    sent: int = 0


async def report(call_id: str, links: list[Link], seconds: int) -> None:
    """``seconds`` of the call (a sample now, then one every 5 s), each link's counters growing
    at its rates. The test clock moves 5 s between samples."""
    clock = links[0].tab.client.services.clock
    for step in range(seconds // 5 + 1):
        if step:
            clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
        for link in links:
            if step:
                link.decoded += 5 * link.decoded_fps
                link.sent += 5 * link.sent_fps
            sample = {
                "video_in": {"frames_decoded": link.decoded},
                "video_out": {"frames_sent": link.sent},
            }
            reply = await link.tab.sio.call(
                "call:stats",
                {"call_id": call_id, "about": link.about.peer_id, "stats": sample},  # type: ignore[attr-defined]
                timeout=5,
            )
            assert reply == {"ok": True}, reply


def both_ways(a: Tab, b: Tab, **rates: int) -> list[Link]:
    return [Link(a, b, **rates), Link(b, a, **rates)]
