"""The SFU's jitter buffer hands each frame on as soon as it is whole, in order, and loses none
when a packet comes late (media/forwarding.py, ``_WholeFrames``)."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from media.forwarding import _WholeFrames


def packet(seq: int, timestamp: int, data: bytes, marker: bool = False) -> RtpPacket:
    made = RtpPacket(sequence_number=seq, timestamp=timestamp, marker=int(marker))
    made._data = data  # type: ignore[attr-defined]  # what the receiver's depayloader leaves
    return made


def test_a_video_frame_goes_at_its_last_packet() -> None:
    buffer = _WholeFrames("video")
    assert buffer.add(packet(1, 100, b"a"))[1] is None
    frame = buffer.add(packet(2, 100, b"b", marker=True))[1]
    assert frame is not None and (frame.timestamp, frame.data) == (100, b"ab")


def test_an_unmarked_video_frame_goes_when_the_next_begins() -> None:
    buffer = _WholeFrames("video")
    assert buffer.add(packet(1, 100, b"a"))[1] is None
    assert buffer.add(packet(2, 100, b"b"))[1] is None
    frame = buffer.add(packet(3, 200, b"c"))[1]
    assert frame is not None and (frame.timestamp, frame.data) == (100, b"ab")


def test_audio_goes_packet_by_packet() -> None:
    buffer = _WholeFrames("audio")
    for seq in (1, 2, 3):
        frame = buffer.add(packet(seq, seq * 960, bytes([seq])))[1]
        assert frame is not None and frame.data == bytes([seq])


def test_a_late_packet_releases_every_frame_it_held_back_in_order() -> None:
    buffer = _WholeFrames("video")
    assert buffer.add(packet(1, 100, b"a"))[1] is None
    # Packet 2 is late: the frames after it are whole but must wait for it.
    for seq, timestamp, data in ((3, 200, b"c"), (4, 200, b"d"), (5, 300, b"e")):
        assert buffer.add(packet(seq, timestamp, data, marker=seq != 3))[1] is None
    first = buffer.add(packet(2, 100, b"b", marker=True))[1]
    frames = [first]
    while (more := buffer.next_whole_frame()) is not None:
        frames.append(more)
    assert [(f.timestamp, f.data) for f in frames if f] == [(100, b"ab"), (200, b"cd"), (300, b"e")]
    assert buffer.next_whole_frame() is None
