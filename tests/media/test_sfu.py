"""The server's end of SFU calls (media/sfu.py): what a page's signals may and may not open."""

from __future__ import annotations

from typing import Any

from media.sfu import SfuCalls


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


async def test_a_page_that_joins_again_gets_a_new_connection() -> None:
    """Each join of a page comes with its connections dropped: the server offers anew (new ICE
    credentials), and the participant is in the room once."""
    sent: list[dict[str, Any]] = []

    async def send(call_id: str, peer_id: str, payload: dict[str, Any]) -> None:
        sent.append(payload)

    sfu = SfuCalls(send)
    try:
        await sfu.join("call-1", "doctor")
        await sfu.join("call-1", "doctor")
        offers = [m["description"]["sdp"] for m in sent]
        assert len(offers) == 2
        ufrags = [line for sdp in offers for line in sdp.splitlines() if "a=ice-ufrag:" in line]
        assert len(set(ufrags)) == 2  # two connections, not one offered twice
        room = sfu.room("call-1")
        assert room is not None and room.participants == {"doctor"}
    finally:
        await sfu.close()
