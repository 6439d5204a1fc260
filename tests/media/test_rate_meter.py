"""The per-track bitrate: over the last few seconds, falling to zero when a stream stops
(media/forwarding.py, ``RateMeter``)."""

from __future__ import annotations

from media.forwarding import RateMeter


def test_a_steady_stream_reads_at_its_rate() -> None:
    meter = RateMeter()
    for tick in range(100):  # 10 s of 1,250 bytes every 0.1 s: 100 kb/s
        meter.add(1250, tick / 10)
    assert meter.kbps(10.0) == 100.0
    assert meter.total == 125_000


def test_the_rate_follows_a_change_within_the_window() -> None:
    meter = RateMeter()
    for tick in range(100):  # 100 kb/s for 10 s, then 500 kb/s for 10 s
        meter.add(1250, tick / 10)
    for tick in range(100, 200):
        meter.add(6250, tick / 10)
    assert meter.kbps(20.0) == 500.0


def test_a_stream_that_stopped_reads_zero() -> None:
    meter = RateMeter()
    for tick in range(50):
        meter.add(1250, tick / 10)
    assert meter.kbps(5.0) > 0
    assert meter.kbps(5.0 + RateMeter.WINDOW + 1) == 0.0


def test_a_burst_at_the_start_is_not_read_as_a_rate() -> None:
    meter = RateMeter()
    meter.add(125_000, 0.0)  # a keyframe's worth, alone
    assert meter.kbps(0.01) == 1000.0  # over a second, not over 10 ms
