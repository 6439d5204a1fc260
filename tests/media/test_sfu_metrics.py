"""The SFU's totals for monitoring (media/metrics.py): counters that never go down when tracks
end, and the sum over the app's SFU and its media nodes."""

from __future__ import annotations

from typing import Any

from media.metrics import SfuMetrics, combine


def track(publisher: str, kind: str, frames: int, subscribers: dict[str, int]) -> dict[str, Any]:
    """A track's figures as ``Publication.stats`` gives them (bytes = 100 per frame)."""
    return {
        "publisher_id": publisher,
        "kind": kind,
        "frames": frames,
        "bytes": frames * 100,
        "bitrate_kbps": 800.0,
        "packets": frames * 2,
        "packets_lost": 1,
        "keyframe_requests": 2,
        "subscribers": {
            sid: {
                "frames": n,
                "bytes": n * 100,
                "bitrate_kbps": 790.0,
                "packets": n * 2,
                "dropped": 0,
            }
            for sid, n in subscribers.items()
        },
    }


def test_counters_keep_what_ended_tracks_carried() -> None:
    metrics = SfuMetrics()
    room = [
        track("doctor", "video", 300, {"patient": 290, "nurse": 280}),
        track("patient", "video", 200, {"doctor": 195, "nurse": 190}),
        track("nurse", "video", 100, {"doctor": 99, "patient": 98}),
    ]
    before = metrics.reading(room, calls=1, participants=3)["kinds"]["video"]
    assert before["frames_received"] == 600 and before["tracks"] == 3
    assert before["frames_forwarded"] == 290 + 280 + 195 + 190 + 99 + 98
    assert before["bitrate_in_kbps"] == 2400.0 and before["subscriptions"] == 6

    # The nurse leaves: her track ends, and so do the two streams she received.
    metrics.participant_left("nurse", room)
    after_room = [
        track("doctor", "video", 300, {"patient": 290}),
        track("patient", "video", 200, {"doctor": 195}),
    ]
    after = metrics.reading(after_room, calls=1, participants=2)["kinds"]["video"]
    for counter in ("frames_received", "bytes_received", "packets_received", "frames_forwarded"):
        assert after[counter] == before[counter], counter
    assert after["packets_lost"] == 3 and after["keyframe_requests"] == 6
    # What flows now is only what is still live.
    assert after["tracks"] == 2 and after["subscriptions"] == 2
    assert after["bitrate_in_kbps"] == 1600.0 and after["bitrate_out_kbps"] == 1580.0

    # Everyone leaves: the counters stay, nothing flows.
    metrics.participant_left("doctor", after_room)
    metrics.participant_left("patient", [track("patient", "video", 200, {})])
    empty = metrics.reading([], calls=0, participants=0)
    assert empty["kinds"]["video"]["frames_received"] == 600
    assert empty["kinds"]["video"]["frames_forwarded"] == before["frames_forwarded"]
    assert (
        empty["kinds"]["video"]["tracks"] == 0 and empty["kinds"]["video"]["bitrate_in_kbps"] == 0
    )


def test_the_app_and_its_nodes_add_up() -> None:
    app = SfuMetrics().reading([track("a", "audio", 50, {"b": 50})], calls=1, participants=2)
    node = SfuMetrics().reading(
        [track("c", "audio", 10, {"d": 10}), track("c", "video", 30, {"d": 30})],
        calls=1,
        participants=2,
    )
    total = combine([app, node])
    assert total["calls"] == 2 and total["participants"] == 4
    assert total["kinds"]["audio"]["frames_received"] == 60
    assert total["kinds"]["audio"]["tracks"] == 2
    assert total["kinds"]["video"]["frames_forwarded"] == 30
