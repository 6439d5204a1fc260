"""A WebRTC client that is not a browser: aiortc's own test tracks, signaling exactly as the
call page does in an SFU call (join, answer every offer of the server's, no device check), and
nothing else: it never asks for a keyframe on its own, as many standard clients don't."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

from tests.signaling.sockets import Tab


def msid_by_mid(sdp: str) -> dict[str, str]:
    """Each media section's mid → the stream id it announces (the publisher's peer id)."""
    found: dict[str, str] = {}
    for section in sdp.split("m=")[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.M)
        msid = re.search(r"^a=msid:(\S+)", section, re.M)
        if mid and msid:
            found[mid.group(1)] = msid.group(1)
    return found


class AiortcParticipant:
    def __init__(self, tab: Tab) -> None:
        self.tab = tab
        self.pc = RTCPeerConnection()
        self.pc.addTrack(AudioStreamTrack())
        self.pc.addTrack(VideoStreamTrack())
        self.peer_id = ""
        self.call_id = ""
        # Decoded video frames per publisher (their peer id, from the server's msid).
        self.decoded: Counter[str] = Counter()
        self._streams: dict[str, str] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._audio = MediaBlackhole()
        self._lock = asyncio.Lock()
        self.pc.on("track", self._on_track)
        tab.sio.on("call:signal", self._on_signal)

    async def join(self, call_id: str) -> dict[str, Any]:
        self.call_id = call_id
        reply: dict[str, Any] = await self.tab.sio.call(
            "call:join", {"call_id": call_id}, timeout=10
        )
        assert reply["ok"], reply
        self.peer_id = reply["peer_id"]
        return reply

    async def _on_signal(self, data: dict[str, Any]) -> None:
        self.tab.events.setdefault("call:signal", []).append(data)
        description = data.get("description")
        if data.get("from") != "sfu" or not description or description["type"] != "offer":
            return
        async with self._lock:
            await self.pc.setRemoteDescription(RTCSessionDescription(**description))
            self._streams.update(msid_by_mid(description["sdp"]))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            local = self.pc.localDescription
            await self.tab.sio.call(
                "call:signal",
                {
                    "call_id": self.call_id,
                    "to": "sfu",
                    "description": {"type": local.type, "sdp": local.sdp},
                },
                timeout=10,
            )

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._audio.addTrack(track)
            return
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._readers.append(asyncio.ensure_future(self._read(transceiver.mid or "", track)))

    async def _read(self, mid: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.decoded[self._streams.get(mid, mid)] += 1

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await self._audio.stop()
        await self.pc.close()
