"""Counting the codec work done in this process: which encoder and decoder objects ran."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiortc.codecs import opus, vpx


@pytest.fixture
def codec_work(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, set[int]]]:
    """Which encoder and decoder objects did any work (by id), in this process: the SFU must
    not appear there."""
    work: dict[str, set[int]] = {"encode": set(), "decode": set()}
    for cls in (vpx.Vp8Encoder, opus.OpusEncoder):
        original_encode = cls.encode

        def encode(self: Any, *a: Any, _o: Any = original_encode, **k: Any) -> Any:
            work["encode"].add(id(self))
            return _o(self, *a, **k)

        monkeypatch.setattr(cls, "encode", encode)
    for cls in (vpx.Vp8Decoder, opus.OpusDecoder):
        original_decode = cls.decode

        def decode(self: Any, *a: Any, _o: Any = original_decode, **k: Any) -> Any:
            work["decode"].add(id(self))
            return _o(self, *a, **k)

        monkeypatch.setattr(cls, "decode", decode)
    yield work
