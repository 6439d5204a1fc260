"""The SFU's forwarding, with real aiortc peers on loopback: a publisher's camera and microphone
reach the subscribers of its call, still encoded, never decoded or encoded again on the server;
a subscriber who comes late gets a picture within a second; a call's media stays in that call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    VideoStreamTrack,
)
from av import VideoFrame

from media import forwarding
from media.room import Room

# Solid colours in YUV: the subscriber tells from what it decodes whose camera it sees.
COLOURS = {"red": (81, 90, 240), "blue": (41, 240, 110)}


class ColourCamera(VideoStreamTrack):
    def __init__(self, colour: str) -> None:
        super().__init__()
        self.yuv = COLOURS[colour]

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(320, 240, "yuv420p")
        for plane, value in zip(frame.planes, self.yuv, strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


def colour_of(frame: VideoFrame) -> str:
    u = bytes(frame.planes[1])
    mean_u = sum(u) / len(u)
    return min(COLOURS, key=lambda c: abs(COLOURS[c][1] - mean_u))


async def negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


def prefer_vp8(pc: RTCPeerConnection) -> None:
    """What the SFU asks of every connection: the codecs it forwards, so that what one
    participant sends, every other can decode."""
    caps = RTCRtpSender.getCapabilities("video")
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == "video/VP8"])


class Call:
    """A room, with each participant's client connection and the server's end of it."""

    def __init__(self, call_id: str) -> None:
        self.room = Room(call_id)
        self.connections: list[RTCPeerConnection] = []
        self.server_sides: dict[str, RTCPeerConnection] = {}
        self.readers: list[asyncio.Future[None]] = []

    def pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection()
        self.connections.append(pc)
        return pc

    async def publish(
        self, who: str, colour: str, tracks: list[MediaStreamTrack] | None = None
    ) -> RTCPeerConnection:
        """``who`` joins and sends a camera and a microphone (or ``tracks``)."""
        self.room.join(who)
        client, server = self.pc(), self.pc()
        self.server_sides[who] = server
        for track in tracks or [ColourCamera(colour), AudioStreamTrack()]:
            client.addTrack(track)
        prefer_vp8(client)

        @server.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(r for r in server.getReceivers() if r.track is track)
            _, made = self.room.publish(who, receiver)
            assert not made  # nobody else in the call yet, in these tests

        await negotiate(client, server)
        return client

    async def subscribe(
        self, who: str, on_receiver: Callable[[RTCRtpReceiver], None] | None = None
    ) -> dict[str, list[Any]]:
        """``who`` joins and receives what is published; returns the frames as they decode.
        ``on_receiver`` sees each of the subscriber's receivers before it starts."""
        client, server = self.pc(), self.pc()
        self.server_sides[who] = server
        for _publication, track in self.room.join(who):
            track.attach(server.addTrack(track))
        prefer_vp8(server)
        frames: dict[str, list[Any]] = {"video": [], "audio": []}

        @client.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if on_receiver is not None:
                on_receiver(next(r for r in client.getReceivers() if r.track is track))

            async def read() -> None:
                while True:
                    frames[track.kind].append((time.monotonic(), await track.recv()))

            self.readers.append(asyncio.ensure_future(read()))

        await negotiate(server, client)
        return frames

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        for pc in self.connections:
            await pc.close()


async def until(predicate: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_forwarded_media_is_never_decoded_or_encoded_on_the_server(
    codec_work: dict[str, set[int]],
) -> None:
    call = Call("call-1")
    try:
        publisher = await call.publish("doctor", "red")
        seen = await call.subscribe("patient")
        await until(lambda: len(seen["video"]) >= 30 and len(seen["audio"]) >= 50, 15)
        # The subscriber decodes the publisher's picture, whole.
        frame = seen["video"][-1][1]
        assert (frame.width, frame.height, colour_of(frame)) == (320, 240, "red")
        assert seen["audio"][-1][1].sample_rate == 48000

        # The server: its receivers' decoders never ran, its senders' encoders never ran.
        server_in, server_out = call.server_sides["doctor"], call.server_sides["patient"]
        server_encoders = {id(s._RTCRtpSender__encoder) for s in server_out.getSenders()}  # type: ignore[attr-defined]
        assert server_encoders and not server_encoders & codec_work["encode"]
        for receiver in server_in.getReceivers():
            assert receiver._RTCRtpReceiver__decoder_queue.frames > 0
        # The clients did the coding: the publisher encoded, the subscriber decoded (video and
        # audio), and no one else decoded anything.
        publisher_encoders = {id(s._RTCRtpSender__encoder) for s in publisher.getSenders()}  # type: ignore[attr-defined]
        assert publisher_encoders <= codec_work["encode"]
        assert len(codec_work["decode"]) == 2

        stats = {s["kind"]: s for s in await call.room.stats()}
        video = stats["video"]["subscribers"]["patient"]  # type: ignore[index]
        assert stats["video"]["frames"] >= 30 and video["frames"] >= 30
        assert stats["audio"]["bytes"] > 0
    finally:
        await call.close()


async def test_a_late_subscriber_gets_a_picture_within_a_second() -> None:
    call = Call("call-1")
    try:
        await call.publish("doctor", "red")
        publication = next(p for p in call.room.publications if p.kind == "video")
        await until(lambda: publication.frames >= 60, 15)  # two seconds in: no keyframe soon
        joined = time.monotonic()
        seen = await call.subscribe("nurse")
        await until(lambda: bool(seen["video"]), 5)
        assert seen["video"][0][0] - joined < 1.5
        assert publication.keyframes.sent >= 1  # it asked the publisher for one
    finally:
        await call.close()


async def test_a_calls_media_stays_in_that_call() -> None:
    first, second = Call("call-1"), Call("call-2")
    try:
        await first.publish("doctor-1", "red")
        await second.publish("doctor-2", "blue")
        seen_1 = await first.subscribe("patient-1")
        seen_2 = await second.subscribe("patient-2")
        await until(lambda: len(seen_1["video"]) >= 20 and len(seen_2["video"]) >= 20, 15)
        assert {colour_of(f) for _, f in seen_1["video"]} == {"red"}
        assert {colour_of(f) for _, f in seen_2["video"]} == {"blue"}
        assert set(first.room.participants) == {"doctor-1", "patient-1"}
        for publication in second.room.publications:
            assert set(publication.subscribers) == {"patient-2"}
    finally:
        await first.close()
        await second.close()


async def test_a_participant_who_leaves_stops_their_tracks_for_the_others() -> None:
    call = Call("call-1")
    try:
        await call.publish("doctor", "red")
        seen = await call.subscribe("patient")
        await until(lambda: len(seen["video"]) >= 10, 15)
        forwarded = [p.subscribers["patient"] for p in call.room.publications]
        call.room.leave("doctor")
        assert call.room.publications == []
        assert all(track.readyState == "ended" for track in forwarded)
    finally:
        await call.close()


async def test_per_track_figures_count_packets_loss_bitrate_and_round_trip() -> None:
    call = Call("call-1")
    try:
        await call.publish("doctor", "red")
        seen = await call.subscribe("patient")
        publication = next(p for p in call.room.publications if p.kind == "video")
        track = publication.subscribers["patient"]

        async def reported() -> bool:
            # The subscriber's receiver reports (RTCP RR) come every second or so.
            figures = (await publication.stats())["subscribers"]
            return "round_trip_ms" in figures["patient"]  # type: ignore[index]

        deadline = time.monotonic() + 15
        while not (len(seen["video"]) >= 60 and await reported()):
            assert time.monotonic() < deadline, "no receiver report from the subscriber"
            await asyncio.sleep(0.1)
        stats = await publication.stats()
        subscriber = stats["subscribers"]["patient"]  # type: ignore[index]
        # What the server's receiver counted of the publisher, on loopback: nothing lost.
        assert stats["packets"] >= stats["frames"] >= 60  # type: ignore[operator]
        assert stats["packets_lost"] == 0
        assert stats["jitter_ms"] is not None and 0 <= stats["jitter_ms"] < 50  # type: ignore[operator]
        assert stats["bitrate_kbps"] > 0  # type: ignore[operator]
        # What went to the subscriber, and what its receiver says of it.
        # A frame is counted when it is handed to the sender, its packets when they leave: one
        # or two frames may be between the two when the figures are read (seen: 63 packets for
        # 64 frames on a fresh CI machine). Each frame is at least one packet.
        assert subscriber["frames"] > 0
        assert subscriber["packets"] >= subscriber["frames"] - 3  # type: ignore[operator]
        assert subscriber["packets_lost"] == 0
        assert 0 <= subscriber["round_trip_ms"] < 1000
        assert track.sender is not None and subscriber["bytes"] == track.bytes > 0
        # Forwarding changes no byte: the subscriber's stream runs at the publisher's rate (the
        # two meters' windows end a few frames apart, hence the margin).
        assert 0.8 < subscriber["bitrate_kbps"] / stats["bitrate_kbps"] < 1.25  # type: ignore[operator]
    finally:
        await call.close()


def test_the_aiortc_internals_the_sfu_uses_are_there() -> None:
    """Fails loudly when an aiortc release moves what media/forwarding.py hooks into."""
    forwarding.check_aiortc()
