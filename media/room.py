"""One SFU call: who publishes which tracks, and who receives them.

Each participant's page has one peer connection to the server. What a participant sends is
tapped at the server's receiver (``forwarding.tap_receiver``) and copied, still encoded, to one
``ForwardedTrack`` per other participant, which that participant's connection sends. A room only
ever forwards between its own participants: media of one call cannot reach another call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aiortc import RTCRtpReceiver

from media.forwarding import EncodedFrame, ForwardedTrack, KeyframeRequester, tap_receiver


@dataclass
class Publication:
    """One track a participant sends (their camera, their microphone)."""

    publisher_id: str
    kind: str
    receiver: RTCRtpReceiver
    keyframes: KeyframeRequester
    subscribers: dict[str, ForwardedTrack] = field(default_factory=dict)
    frames: int = 0
    bytes: int = 0

    def forward(self, frame: EncodedFrame) -> None:
        self.frames += 1
        self.bytes += len(frame.data)
        for track in self.subscribers.values():
            track.push(frame)

    def stats(self) -> dict[str, object]:
        return {
            "publisher_id": self.publisher_id,
            "kind": self.kind,
            "frames": self.frames,
            "bytes": self.bytes,
            "keyframe_requests": self.keyframes.sent,
            "subscribers": {
                sid: {
                    "frames": t.frames,
                    "bytes": t.bytes,
                    "dropped": t.dropped,
                    "wait_ms_p50": _percentile(t.waits, 0.5),
                    "wait_ms_p99": _percentile(t.waits, 0.99),
                }
                for sid, t in self.subscribers.items()
            },
        }


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

    def stats(self, publisher_id: str | None = None) -> list[dict[str, object]]:
        """Per published track: what came in, what went to each subscriber, keyframe requests,
        how long frames waited here. ``publisher_id``: that participant's tracks only."""
        return [
            p.stats()
            for p in self.publications
            if publisher_id is None or p.publisher_id == publisher_id
        ]
