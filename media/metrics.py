"""What an SFU has forwarded since it started, for the operators' metrics endpoint.

The per-track figures (``Publication.stats``) belong to the call record and are shown to the
call's members; monitoring wants the other view: per kind, totals over every call, with no call
or participant in them. Totals are counters and must never go down, so the figures of a track
are kept here when it ends (its publisher or its subscriber leaves), and the live ones added at
each reading.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

KINDS = ("audio", "video")
# Per kind: what came in from publishers, what went out to subscribers.
COUNTERS = (
    "frames_received",
    "bytes_received",
    "packets_received",
    "packets_lost",
    "keyframe_requests",
    "frames_forwarded",
    "bytes_forwarded",
    "packets_forwarded",
    "frames_dropped",
)
GAUGES = ("tracks", "subscriptions", "bitrate_in_kbps", "bitrate_out_kbps")


def _subscription(into: Counter[str], figures: Mapping[str, Any]) -> None:
    into["frames_forwarded"] += figures.get("frames", 0)
    into["bytes_forwarded"] += figures.get("bytes", 0)
    into["packets_forwarded"] += figures.get("packets", 0)
    into["frames_dropped"] += figures.get("dropped", 0)


def _publication(into: Counter[str], figures: Mapping[str, Any]) -> None:
    into["frames_received"] += figures.get("frames", 0)
    into["bytes_received"] += figures.get("bytes", 0)
    into["packets_received"] += figures.get("packets", 0)
    into["packets_lost"] += figures.get("packets_lost", 0)
    into["keyframe_requests"] += figures.get("keyframe_requests", 0)
    for subscription in figures.get("subscribers", {}).values():
        _subscription(into, subscription)


class SfuMetrics:
    """Counters of ended tracks, kept across calls for as long as the process runs."""

    def __init__(self) -> None:
        self._ended: dict[str, Counter[str]] = {}

    def _kind(self, kind: str) -> Counter[str]:
        return self._ended.setdefault(kind, Counter())

    def participant_left(self, peer_id: str, tracks: Iterable[Mapping[str, Any]]) -> None:
        """``tracks``: the room's figures just before ``peer_id`` left. Their own tracks end, and
        so does what they received of everyone else's."""
        for track in tracks:
            kind = self._kind(str(track["kind"]))
            if track["publisher_id"] == peer_id:
                _publication(kind, track)
            elif peer_id in track.get("subscribers", {}):
                _subscription(kind, track["subscribers"][peer_id])

    def reading(
        self, live: Iterable[Mapping[str, Any]], *, calls: int, participants: int
    ) -> dict[str, Any]:
        """Totals so far (ended tracks and ``live`` ones, the rooms' current figures) and what
        flows now: a plain dict, so that a media node can send it to the app."""
        # Both kinds always, at zero before any call: a series that exists from the start.
        kinds: dict[str, Counter[str]] = {name: Counter() for name in KINDS}
        for name, ended in self._ended.items():
            kinds.setdefault(name, Counter()).update(ended)
        for track in live:
            kind = kinds.setdefault(str(track["kind"]), Counter())
            _publication(kind, track)
            kind["tracks"] += 1
            kind["subscriptions"] += len(track.get("subscribers", {}))
            kind["bitrate_in_kbps"] += track.get("bitrate_kbps", 0)
            for subscription in track.get("subscribers", {}).values():
                kind["bitrate_out_kbps"] += subscription.get("bitrate_kbps", 0)
        return {
            "calls": calls,
            "participants": participants,
            "kinds": {
                name: {key: counts.get(key, 0) for key in COUNTERS + GAUGES}
                for name, counts in kinds.items()
            },
        }


def combine(readings: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of several SFUs' readings (the app's own and its media nodes')."""
    total: dict[str, Any] = {"calls": 0, "participants": 0, "kinds": {}}
    for reading in readings:
        total["calls"] += reading.get("calls", 0)
        total["participants"] += reading.get("participants", 0)
        for name, figures in reading.get("kinds", {}).items():
            into = total["kinds"].setdefault(name, dict.fromkeys(COUNTERS + GAUGES, 0))
            for key in COUNTERS + GAUGES:
                into[key] += figures.get(key, 0)
    return total
