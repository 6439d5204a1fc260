"""Forwarding encoded media through aiortc, without decoding or encoding it.

aiortc's ``MediaRelay`` works on decoded frames: every incoming frame is decoded, and every
outgoing one encoded again for each subscriber (about 7 ms of CPU per 720p VP8 frame per
subscriber, measured here). An SFU has no use for the pictures: it forwards what it receives.

aiortc has what is needed, a step apart:
- its receiver assembles each encoded frame from RTP packets (jitter buffer, depayloading) and
  puts it on a queue for its decoder thread;
- its sender sends an ``av.Packet`` as it is, packetized, without encoding it.

This module joins the two, and is the only place that reaches into aiortc's internals:
- ``tap_receiver`` replaces the receiver's queue to its decoder thread with one that hands each
  encoded frame to us; the decoder thread then never gets a frame, and never makes a decoder.
  It also replaces the receiver's jitter buffer with one that hands a frame on as soon as it is
  whole (``_WholeFrames``): sound and picture then wait the same in the SFU, and stay in sync;
- ``ForwardedTrack`` is a track of ``av.Packet``: the sender packs them and sends them;
- ``on_keyframe_request`` learns when a subscriber asks the sender for a keyframe (PLI/FIR),
  and ``KeyframeRequester`` asks the publisher for one, at most twice a second.

The internals used are checked by ``check_aiortc`` (at import, and by tests/media), so an aiortc
release that moves them fails loudly instead of silently decoding again; ``pyproject.toml`` pins
the aiortc versions this was written against.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

log = logging.getLogger("teleconsult.media")

_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_TIMESTAMP_MAPPER = "_RTCRtpReceiver__timestamp_mapper"

# A subscriber that lost a picture asks again and again until it gets a keyframe: one request
# to the publisher per interval is enough, and costs the publisher one keyframe.
KEYFRAME_REQUEST_INTERVAL = 0.5
# Frames waiting for a subscriber's sender; beyond, the oldest go (a subscriber that cannot keep
# up gets a fresh picture, not a growing delay).
MAX_QUEUED_FRAMES = 60


_pending: set[asyncio.Future[None]] = set()  # requests on their way (kept from the collector)


class IncompatibleAiortc(RuntimeError):
    """The installed aiortc does not have the internals this module hooks into."""


def check_aiortc() -> None:
    missing = []
    init_code = RTCRtpReceiver.__init__.__code__
    for name in (_DECODER_QUEUE, _DECODER_THREAD, _JITTER_BUFFER, _TIMESTAMP_MAPPER):
        if name not in init_code.co_names:
            missing.append(f"RTCRtpReceiver.{name}")
    buffer = JitterBuffer(capacity=16)
    for attribute in ("_packets", "_origin", "_capacity"):
        if not hasattr(buffer, attribute):
            missing.append(f"JitterBuffer.{attribute}")
    if "_stream_id" not in RTCRtpSender.__init__.__code__.co_names:
        missing.append("RTCRtpSender._stream_id")
    owners_methods: list[tuple[type, str]] = [
        (JitterBuffer, "_remove_frame"),
        (JitterBuffer, "remove"),
        (RTCRtpReceiver, "_send_rtcp_pli"),
        (RTCRtpReceiver, "_handle_rtp_packet"),
        (RTCRtpSender, "_send_keyframe"),
        (RTCRtpSender, "_handle_rtcp_packet"),
    ]
    for owner, method in owners_methods:
        if not callable(getattr(owner, method, None)):
            missing.append(f"{owner.__name__}.{method}")
    if missing:
        raise IncompatibleAiortc(
            "aiortc changed: the SFU needs " + ", ".join(missing) + " (see media/forwarding.py)"
        )


check_aiortc()


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded frame as the receiver assembled it (VP8 frame, Opus packet)."""

    kind: str  # "audio" or "video"
    mime_type: str  # "video/VP8", "audio/opus"
    clock_rate: int
    data: bytes
    timestamp: int  # in clock_rate units, from 0 for this receiver

    @property
    def is_keyframe(self) -> bool:
        """Audio frames stand alone. A VP8 frame is a keyframe when the P bit of its first byte
        is 0 (RFC 6386 §9.1)."""
        if self.kind == "audio":
            return True
        if self.mime_type.lower() == "video/vp8":
            return bool(self.data) and not self.data[0] & 0x01
        return False


class _WholeFrames(JitterBuffer):
    """A jitter buffer that hands each frame on as soon as it is whole.

    aiortc's buffers are made for its decoders: audio is held until four more packets have come
    (80 ms), and a video frame until the next frame's first packet (a frame interval, 33 ms at
    30 fps). An SFU's senders write their sender reports (RTCP SR) from the time they send: held
    that long here, sound reached the subscriber reported 48 ms later than the picture captured
    with it (tests/media/test_av_sync.py). Here an audio packet is a frame (each carries a whole
    Opus frame, RFC 7587) and a video frame is whole at its last packet (the RTP marker bit,
    RFC 7741), or, should a sender not mark it, when the next frame begins, as before. Evening
    out the network's jitter is left to the subscriber's own buffer, which does it anyway.

    When a missing packet arrives late, several frames may become whole at once: ``add``
    returns the first and the others are taken with ``next_whole_frame``."""

    def __init__(self, kind: str) -> None:
        audio = kind == "audio"
        super().__init__(capacity=16 if audio else 512, is_video=not audio)
        self._packet_is_frame = audio

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        return self.next_whole_frame()

    def next_whole_frame(self) -> JitterFrame | None:
        if self._origin is None:
            return None
        packets: list[RtpPacket] = []
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None  # a packet is missing: wait for it
            if packets and packet.timestamp != packets[0].timestamp:
                break  # the next frame has begun
            packets.append(packet)
            if self._packet_is_frame or packet.marker:
                break
        else:
            return None
        self.remove(len(packets))
        data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]
        return JitterFrame(data=data, timestamp=packets[0].timestamp)


class _TapQueue(queue.Queue[Any]):
    """Stands in for the receiver's queue to its decoder thread: frames go to ``sink``; only the
    stop signal (None) reaches the thread, which then ends as it always does."""

    def __init__(
        self, receiver: RTCRtpReceiver, buffer: _WholeFrames, sink: Callable[[EncodedFrame], None]
    ) -> None:
        super().__init__()
        self._kind = receiver.track.kind
        self._timestamps = getattr(receiver, _TIMESTAMP_MAPPER)
        self._buffer = buffer
        self._sink = sink
        self.frames = 0

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None, block, timeout)
            return
        codec, frame = item
        assert isinstance(codec, RTCRtpCodecParameters) and isinstance(frame, JitterFrame)
        self._deliver(codec, frame)
        # Frames made whole by the same packet; the receiver maps only the first one's clock.
        while (more := self._buffer.next_whole_frame()) is not None:
            more.timestamp = self._timestamps.map(more.timestamp)
            self._deliver(codec, more)

    def _deliver(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        self.frames += 1
        self._sink(
            EncodedFrame(self._kind, codec.mimeType, codec.clockRate, frame.data, frame.timestamp)
        )


def tap_receiver(receiver: RTCRtpReceiver, sink: Callable[[EncodedFrame], None]) -> _TapQueue:
    """Send the receiver's encoded frames to ``sink`` instead of its decoder, each as soon as it
    is whole. Call it before the receiver starts (from the peer connection's "track" event)."""
    if getattr(receiver, _DECODER_THREAD, None) is not None:
        raise RuntimeError("the receiver has started: tap it from the 'track' event")
    buffer = _WholeFrames(receiver.track.kind)
    setattr(receiver, _JITTER_BUFFER, buffer)
    tap = _TapQueue(receiver, buffer, sink)
    setattr(receiver, _DECODER_QUEUE, tap)
    return tap


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], object]) -> None:
    """Call ``callback`` when the sender's peer asks for a keyframe (RTCP PLI or FIR)."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        callback()

    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]


def label_stream(sender: RTCRtpSender, stream_id: str) -> None:
    """Announce the sender's track under ``stream_id`` (the SDP's msid): a page receiving several
    participants over one connection groups each one's sound and picture by it."""
    sender._stream_id = stream_id


@dataclass
class KeyframeRequester:
    """Asks a publisher for a keyframe, at most once per ``interval``."""

    receiver: RTCRtpReceiver
    interval: float = KEYFRAME_REQUEST_INTERVAL
    sent: int = 0
    _last: float = field(default=float("-inf"))

    def request(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.interval:
            return False
        sources = self.receiver.getSynchronizationSources()
        if not sources:
            return False  # nothing received yet: the first frame will be a keyframe anyway
        self._last = now
        self.sent += 1
        task = asyncio.ensure_future(self.receiver._send_rtcp_pli(sources[0].source))
        _pending.add(task)
        task.add_done_callback(_pending.discard)
        return True


class RateMeter:
    """Bits per second over the last few seconds, for the per-track figures: enough to see a
    stream starve or recover, and cheap enough to count every frame (one mark per half second).
    """

    WINDOW = 5.0
    MARK_EVERY = 0.5

    def __init__(self) -> None:
        self.total = 0
        self._marks: deque[tuple[float, int]] = deque()  # (when, total before that moment)

    def add(self, size: int, now: float) -> None:
        if not self._marks or now - self._marks[-1][0] >= self.MARK_EVERY:
            self._marks.append((now, self.total))
        self.total += size

    def kbps(self, now: float) -> float:
        while self._marks and now - self._marks[0][0] > self.WINDOW:
            self._marks.popleft()
        if not self._marks:
            return 0.0  # nothing in the window
        since, total = self._marks[0]
        # At least a second: a stream that has just begun is not reported at a burst's rate.
        return round((self.total - total) * 8 / max(1.0, now - since) / 1000, 1)


class ForwardedTrack(MediaStreamTrack):
    """What one subscriber receives of one publisher's track: encoded frames, sent as they came.

    A video subscriber starts at a keyframe (frames before it could not be decoded) and asks for
    one when it joins; ``request_keyframe`` is wired to the publisher's ``KeyframeRequester``."""

    def __init__(self, kind: str, request_keyframe: Callable[[], object]) -> None:
        super().__init__()
        self.kind = kind
        self._request_keyframe = request_keyframe
        self._queue: asyncio.Queue[tuple[av.Packet[Any], float] | None] = asyncio.Queue()
        # How long frames waited here, from arriving whole to being taken by the sender.
        self.waits: deque[float] = deque(maxlen=300)
        self._waiting_for_keyframe = kind == "video"
        self.frames = 0
        self.dropped = 0
        self.rate = RateMeter()
        # The server's sender of this track, once it has one: its RTP figures, and the
        # subscriber's receiver reports (loss, round trip).
        self.sender: RTCRtpSender | None = None
        if self._waiting_for_keyframe:
            request_keyframe()

    @property
    def bytes(self) -> int:
        return self.rate.total

    def attach(self, sender: RTCRtpSender) -> None:
        """``sender`` sends this track: the subscriber's keyframe requests (PLI/FIR) reach the
        publisher, and the sender's figures go into the track's."""
        self.sender = sender
        on_keyframe_request(sender, self._request_keyframe)

    def push(self, frame: EncodedFrame) -> None:
        if self.readyState != "live":
            return
        if self._waiting_for_keyframe:
            if not frame.is_keyframe:
                self.dropped += 1
                self._request_keyframe()
                return
            self._waiting_for_keyframe = False
        if self._queue.qsize() >= MAX_QUEUED_FRAMES:
            self._drain()
            if self.kind == "video":
                self._waiting_for_keyframe = True
                self._request_keyframe()
                self.dropped += 1
                return
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = Fraction(1, frame.clock_rate)
        now = time.monotonic()
        self.frames += 1
        self.rate.add(len(frame.data), now)
        self._queue.put_nowait((packet, now))

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
            self.dropped += 1

    async def recv(self) -> av.Packet[Any]:
        item = await self._queue.get()
        if item is None:
            raise MediaStreamError()
        packet, arrived = item
        self.waits.append(time.monotonic() - arrived)
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self._queue.put_nowait(None)
        super().stop()
