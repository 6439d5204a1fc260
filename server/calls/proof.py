"""Proof that a teleconsultation took place by video: how long two *persons* each received the
other's picture. Pure functions over the call's quality samples; no database.

Samples are per pair of connections: the page of peer R reports, every 5 s, how many frames it
decoded *from* peer S, and how many it sent *to* S (``about`` = S). What counts:
- only time during which both sides received each other's video, per person, over all their
  connections (a reload is a new connection of the same person);
- never a person with themselves (two tabs of one account prove nothing), nor a person who
  never joined;
- peer-to-peer: R's decoded frames from S only where S's own samples show frames sent to R over
  the same time (a page cannot prove alone that it received anything);
- SFU: only the server's own figures (frames it forwarded to R of S's track, once R's receiver
  reports on that stream); the pages' reports are ignored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

# Samples further apart than this do not vouch for the time between them (a page that stopped
# reporting, a tab asleep): 5 s apart normally, a late one tolerated.
MAX_SAMPLE_GAP_S = 15.0
# A receiver may not have decoded more than its sender reports sending over the same stretch of
# time, give or take the frames in flight at the edges of unaligned samples (2 s at 30 fps).
FRAMES_IN_FLIGHT = 60


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    reporter: str  # the peer whose page (or, in SFU calls, whose server end) reports
    about: str  # the other peer: decoded frames come from it, sent frames go to it
    decoded: int | None
    sent: int | None
    by_server: bool


Span = tuple[datetime, datetime]


def sample_of(at: datetime, peer_id: str | None, data: Mapping[str, Any] | None) -> Sample | None:
    """A stored ``stats`` event as a sample; None for one that is not about another peer (old
    pages reported all their connections under one id: such a sample proves nothing)."""
    if not data or peer_id is None or not isinstance(data.get("about"), str):
        return None

    def count(section: str, key: str) -> int | None:
        value = (data.get(section) or {}).get(key)
        return int(value) if isinstance(value, int | float) and value >= 0 else None

    return Sample(
        at=at,
        reporter=peer_id,
        about=data["about"],
        decoded=count("video_in", "frames_decoded"),
        sent=count("video_out", "frames_sent"),
        by_server=data.get("source") == "server",
    )


def _steps(series: list[Sample], field: str) -> list[tuple[datetime, datetime, int]]:
    """Consecutive samples as (start, end, growth of the counter)."""
    steps = []
    for before, after in pairwise(series):
        a, b = getattr(before, field), getattr(after, field)
        if a is None or b is None:
            continue
        if (after.at - before.at).total_seconds() > MAX_SAMPLE_GAP_S:
            continue
        steps.append((before.at, after.at, b - a))
    return steps


def _overlap(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _backed(
    step: tuple[datetime, datetime, int], sent: list[tuple[datetime, datetime, int]]
) -> bool:
    """The sender's own samples show it sending, over the receiver's step, at least as many
    frames as the receiver decoded."""
    during = [g for s0, s1, g in sent if _overlap((s0, s1), (step[0], step[1]))]
    return sum(during) > 0 and step[2] <= sum(during) + FRAMES_IN_FLIGHT


def received_spans(samples: Iterable[Sample], *, sfu: bool) -> dict[tuple[str, str], list[Span]]:
    """(receiving peer, sending peer) → the spans during which the receiver got video."""
    series: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in sorted(samples, key=lambda s: s.at):
        if s.by_server == sfu and s.reporter != s.about:
            series[(s.reporter, s.about)].append(s)
    received: dict[tuple[str, str], list[Span]] = {}
    for (receiver, sender), own in series.items():
        decoded = [step for step in _steps(own, "decoded") if step[2] > 0]
        if not sfu:
            # Cross-checked against what the sender says it sent to this receiver.
            sent = _steps(series.get((sender, receiver), []), "sent")
            decoded = [step for step in decoded if _backed(step, sent)]
        if decoded:
            received[(receiver, sender)] = [(a, b) for a, b, _ in decoded]
    return received


def _union(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _intersection(a: list[Span], b: list[Span]) -> list[Span]:
    out = []
    for a0, a1 in a:
        for b0, b1 in b:
            start, end = max(a0, b0), min(a1, b1)
            if start < end:
                out.append((start, end))
    return _union(out)


def _seconds(spans: list[Span]) -> float:
    return sum((end - start).total_seconds() for start, end in spans)


@dataclass(frozen=True)
class Proof:
    seconds: float  # both sides receiving each other's video
    one_way: float  # side A receiving side B
    other_way: float  # side B receiving side A


def video_both_ways(
    samples: Iterable[Sample],
    user_of_peer: Mapping[str, str],
    side_a: set[str],
    side_b: set[str],
    *,
    sfu: bool,
) -> Proof:
    """How long every pair of a person of ``side_a`` and a person of ``side_b`` (user ids; a
    person on both sides counts on neither's behalf with themselves) each received the other's
    video."""
    a_gets: list[Span] = []
    b_gets: list[Span] = []
    for (receiver, sender), spans in received_spans(samples, sfu=sfu).items():
        r, s = user_of_peer.get(receiver), user_of_peer.get(sender)
        if r is None or s is None or r == s:
            continue
        if r in side_a and s in side_b:
            a_gets.extend(spans)
        if r in side_b and s in side_a:
            b_gets.extend(spans)
    one, other = _union(a_gets), _union(b_gets)
    return Proof(_seconds(_intersection(one, other)), _seconds(one), _seconds(other))
