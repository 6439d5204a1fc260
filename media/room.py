"""One SFU call: who publishes which tracks, and who receives them.

Each participant's page has one peer connection to the server. What a participant sends is
tapped at the server's receiver (``forwarding.tap_receiver``) and copied, still encoded, to one
``ForwardedTrack`` per other participant, which that participant's connection sends. A room only
ever forwards between its own participants: media of one call cannot reach another call.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender

from media.forwarding import (
    EncodedFrame,
    ForwardedTrack,
    KeyframeRequester,
    RateMeter,
    tap_receiver,
)


@dataclass
class Publication:
    """One track a participant sends (their camera, their microphone)."""

    publisher_id: str
    kind: str
    receiver: RTCRtpReceiver
    keyframes: KeyframeRequester
    subscribers: dict[str, ForwardedTrack] = field(default_factory=dict)
    frames: int = 0
    rate: RateMeter = field(default_factory=RateMeter)
    clock_rate: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def bytes(self) -> int:
        return self.rate.total

    def forward(self, frame: EncodedFrame) -> None:
        self.frames += 1
        self.clock_rate = frame.clock_rate
        self.rate.add(len(frame.data), time.monotonic())
        for track in self.subscribers.values():
            track.push(frame)

    async def stats(self) -> dict[str, object]:
        """What came in from the publisher (frames, bytes, bitrate over the last seconds, RTP
        packets, loss and jitter as the server's receiver counts them, keyframe requests), and
        what went to each subscriber (the same, loss and round trip as the subscriber's
        receiver reports them, frames dropped, how long frames waited here)."""
        now = time.monotonic()
        inbound = _rtp_stats(await self.receiver.getStats(), "inbound-rtp")
        subscribers: dict[str, dict[str, object]] = {}
        for sid, track in self.subscribers.items():
            figures: dict[str, object] = {
                "frames": track.frames,
                "bytes": track.bytes,
                "bitrate_kbps": track.rate.kbps(now),
                "dropped": track.dropped,
                "wait_ms_p50": _percentile(track.waits, 0.5),
                "wait_ms_p99": _percentile(track.waits, 0.99),
            }
            if track.sender is not None:
                figures |= await _sent(track.sender)
            subscribers[sid] = figures
        return {
            "publisher_id": self.publisher_id,
            "kind": self.kind,
            "seconds": round(now - self.started, 1),
            "frames": self.frames,
            "bytes": self.bytes,
            "bitrate_kbps": self.rate.kbps(now),
            "packets": inbound.get("packetsReceived", 0),
            "packets_lost": max(0, inbound.get("packetsLost", 0)),
            "jitter_ms": (
                round(inbound["jitter"] * 1000 / self.clock_rate, 1)
                if "jitter" in inbound and self.clock_rate
                else None
            ),
            "keyframe_requests": self.keyframes.sent,
            "subscribers": subscribers,
        }


def _rtp_stats(report: Any, kind: str) -> dict[str, Any]:
    for entry in report.values():
        if entry.type == kind:
            return dict(vars(entry))
    return {}


async def _sent(sender: RTCRtpSender) -> dict[str, object]:
    """The server's sender's counts, and the loss and round trip that the subscriber's receiver
    reports (RTCP receiver reports; absent until the first one arrives, the round trip until
    one answers a sender report)."""
    report = await sender.getStats()
    outbound = _rtp_stats(report, "outbound-rtp")
    remote = _rtp_stats(report, "remote-inbound-rtp")
    figures: dict[str, object] = {"packets": outbound.get("packetsSent", 0)}
    if remote:
        figures["packets_lost"] = max(0, remote.get("packetsLost", 0))
        # Known once a receiver report answers one of the sender's reports (none may have
        # gone out yet when the first receiver report comes).
        rtt = remote.get("roundTripTime")
        if rtt is not None:
            figures["round_trip_ms"] = round(rtt * 1000, 1)
    return figures


def _percentile(seconds: Iterable[float], q: float) -> float | None:
    ordered = sorted(seconds)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 3)


class Room:
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.publications: list[Publication] = []
        self.participants: set[str] = set()

    def join(self, participant_id: str) -> list[tuple[Publication, ForwardedTrack]]:
        """A participant comes in: the tracks already published, for their connection to send
        them (each asks its publisher for a keyframe)."""
        self.participants.add(participant_id)
        return [
            (publication, self.subscribe(publication, participant_id))
            for publication in self.publications
            if publication.publisher_id != participant_id
        ]

    def publish(
        self, publisher_id: str, receiver: RTCRtpReceiver
    ) -> tuple[Publication, dict[str, ForwardedTrack]]:
        """A participant's track arrives (call from the connection's "track" event): the
        tracks made for every other participant, for their connections to send."""
        if publisher_id not in self.participants:
            raise KeyError(f"{publisher_id} is not in call {self.call_id}")
        publication = Publication(
            publisher_id, receiver.track.kind, receiver, KeyframeRequester(receiver)
        )
        tap_receiver(receiver, publication.forward)
        self.publications.append(publication)
        made = {
            pid: self.subscribe(publication, pid)
            for pid in sorted(self.participants)
            if pid != publisher_id
        }
        return publication, made

    def subscribe(self, publication: Publication, subscriber_id: str) -> ForwardedTrack:
        """One participant starts receiving one publication."""
        self.participants.add(subscriber_id)
        track = ForwardedTrack(publication.kind, publication.keyframes.request)
        publication.subscribers[subscriber_id] = track
        return track

    def leave(self, participant_id: str) -> None:
        """Their tracks end for everyone, and what they received stops."""
        self.participants.discard(participant_id)
        kept = []
        for publication in self.publications:
            if publication.publisher_id == participant_id:
                for track in publication.subscribers.values():
                    track.stop()
                continue
            received = publication.subscribers.pop(participant_id, None)
            if received is not None:
                received.stop()
            kept.append(publication)
        self.publications = kept

    async def stats(self, publisher_id: str | None = None) -> list[dict[str, object]]:
        """Per published track: what came in, what went to each subscriber (``Publication.stats``).
        ``publisher_id``: that participant's tracks only."""
        return [
            await p.stats()
            for p in self.publications
            if publisher_id is None or p.publisher_id == publisher_id
        ]
