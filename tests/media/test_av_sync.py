"""A participant's sound and picture stay in sync through the SFU.

A receiver lines up audio and video by the sender reports (RTCP SR) of each stream: they map the
stream's RTP clock to wall-clock time, so that a sound and a picture captured at the same moment
are played at the same moment. The SFU's senders write their own reports, from the time they send
each packet: any difference between what the SFU adds to audio and what it adds to video
(waiting for a video frame's last packet, the audio jitter buffer's prefetch) becomes an offset
between the two at the subscriber.

Here the publisher sends encoded frames that carry their own capture instant, from one clock for
both streams. The subscriber maps each frame it receives through the SFU's reports, and compares
with the instant the frame carries.
"""

from __future__ import annotations

import asyncio
import statistics
import struct
import time
from fractions import Fraction
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.rtp import RtcpSrPacket

from media import forwarding
from tests.media.test_forwarding import Call, until

NTP_EPOCH = 2208988800  # 1900 → 1970
_STAMP = struct.Struct("!d")


class StampedTrack(MediaStreamTrack):
    """Encoded frames, paced as a camera or a microphone would give them, each carrying the
    instant it stands for. Nothing decodes them: the SFU forwards them as they are and the
    subscriber reads them before its decoder. The first byte keeps VP8's keyframe bit clear, so
    that the SFU forwards every video frame."""

    def __init__(self, kind: str, clock_rate: int, interval: float, size: int, origin: float):
        super().__init__()
        self.kind = kind
        self._clock_rate = clock_rate
        self._interval = interval
        self._size = size
        self._origin = origin
        self._count = 0

    async def recv(self) -> av.Packet[Any]:
        self._count += 1
        offset = self._count * self._interval
        at = self._origin + offset
        await asyncio.sleep(max(0.0, at - time.time()))
        packet = av.Packet(b"\x00" + _STAMP.pack(at) + bytes(self._size - 1 - _STAMP.size))
        packet.pts = round(offset * self._clock_rate)
        packet.time_base = Fraction(1, self._clock_rate)
        return packet


class SyncProbe:
    """What one of the subscriber's receivers got: its frames (RTP time, capture instant) and
    the sender reports it was sent (RTP time, wall-clock time)."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        self.receiver = receiver
        self.kind = receiver.track.kind
        self.frames: list[tuple[int, float]] = []
        self.reports: list[tuple[int, float]] = []
        forwarding.tap_receiver(receiver, self._frame)
        handle_rtcp = receiver._handle_rtcp_packet

        async def rtcp(packet: Any) -> None:
            if isinstance(packet, RtcpSrPacket):
                info = packet.sender_info
                ntp = (info.ntp_timestamp >> 32) + (info.ntp_timestamp & 0xFFFFFFFF) / 2**32
                self.reports.append((info.rtp_timestamp, ntp - NTP_EPOCH))
            await handle_rtcp(packet)

        receiver._handle_rtcp_packet = rtcp  # type: ignore[method-assign]

    def _frame(self, frame: forwarding.EncodedFrame) -> None:
        (at,) = _STAMP.unpack_from(frame.data, 1)
        self.frames.append((frame.timestamp, at))
        self.clock_rate = frame.clock_rate

    def offsets(self) -> list[float]:
        """For each frame after the first report: the instant the reports say it stands for,
        minus the instant it was captured."""
        origin = self.receiver._RTCRtpReceiver__timestamp_mapper._origin  # type: ignore[attr-defined]
        rtp_at, wall_at = self.reports[0]
        # The report's RTP time on the frames' scale (which starts at the first packet's).
        report = (rtp_at - origin + 2**31) % 2**32 - 2**31
        return [
            wall_at + (timestamp - report) / self.clock_rate - captured
            for timestamp, captured in self.frames
        ]


async def test_sound_and_picture_stay_in_sync_through_the_sfu() -> None:
    call = Call("call-1")
    probes: list[SyncProbe] = []
    origin = time.time() + 0.2
    try:
        await call.publish(
            "doctor",
            "red",
            tracks=[
                StampedTrack("video", 90000, 1 / 30, 3000, origin),
                StampedTrack("audio", 48000, 0.02, 80, origin),
            ],
        )
        await call.subscribe("patient", on_receiver=lambda r: probes.append(SyncProbe(r)))
        await until(lambda: len(probes) == 2 and all(len(p.reports) >= 3 for p in probes), 20)
    finally:
        await call.close()
    offsets = {p.kind: statistics.median(p.offsets()) for p in probes}
    # Each stream is reported a little after its capture (what the SFU and loopback add)...
    assert all(0 <= offset < 0.1 for offset in offsets.values()), offsets
    # ...and both by the same: held in aiortc's own jitter buffers, sound came 48 ms after the
    # picture captured with it (80 ms of audio prefetch against one video frame interval).
    assert abs(offsets["video"] - offsets["audio"]) < 0.02, offsets
