"""The server's end of SFU calls (media/calls.py): what a page's signals may and may not open."""

from __future__ import annotations

from typing import Any

from media.calls import SfuCalls


async def test_a_signal_from_someone_without_a_connection_opens_nothing() -> None:
    sent: list[tuple[str, str, dict[str, Any]]] = []

    async def send(call_id: str, peer_id: str, payload: dict[str, Any]) -> None:
        sent.append((call_id, peer_id, payload))

    sfu = SfuCalls(send)
    try:
        # Never joined: no room, no connection, nothing sent back.
        await sfu.signal("call-1", "ghost", {"type": "offer", "sdp": "v=0\r\n"})
        await sfu.signal("call-1", "ghost", None, None, has_candidate=True)
        assert sfu.room("call-1") is None and sent == []

        # Joined: the server offers. Left: a candidate arriving late reopens nothing.
        await sfu.join("call-1", "doctor")
        assert [(c, p, m["description"]["type"]) for c, p, m in sent] == [
            ("call-1", "doctor", "offer")
        ]
        await sfu.leave("call-1", "doctor")
        await sfu.signal("call-1", "doctor", None, {"candidate": ""}, has_candidate=True)
        assert sfu.room("call-1") is None and len(sent) == 1
    finally:
        await sfu.close()
