"""``teleconsult media``: the SFU as a process of its own.

A media node connects to the app like a page does, over socket.io, to the ``/media`` namespace,
with a token derived from the install's secret key. The app then hands it the SFU side of the
calls it chooses to send there: ``media:join``, ``media:signal`` (a page's description or
candidate for ``"sfu"``), ``media:leave`` and ``media:stats``; the node answers the pages with
``media:signal``, which the app relays to the page as ``call:signal`` from ``"sfu"``. The media
then flows between the pages and the node, not through the app.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import socketio

from media.sfu import SfuCalls

log = logging.getLogger("teleconsult.media.node")

NAMESPACE = "/media"


def node_token(secret_key: str) -> str:
    """What a media node shows to connect: only a holder of the install's secret has it."""
    return hmac.new(secret_key.encode(), b"teleconsult media node", hashlib.sha256).hexdigest()


def verify_token(secret_key: str, token: object) -> bool:
    return isinstance(token, str) and hmac.compare_digest(token, node_token(secret_key))


async def run_node(app_url: str, secret_key: str) -> None:
    """Serve the app's SFU calls until the process is stopped (reconnects if the app restarts)."""
    client = socketio.AsyncClient(reconnection=True, reconnection_delay_max=5)

    async def send(call_id: str, peer_id: str, payload: dict[str, Any]) -> None:
        await client.emit(
            "media:signal",
            {"call_id": call_id, "peer_id": peer_id, "payload": payload},
            namespace=NAMESPACE,
        )

    sfu = SfuCalls(send)

    async def join(data: dict[str, str]) -> None:
        await sfu.join(data["call_id"], data["peer_id"])

    async def signal(data: dict[str, Any]) -> None:
        try:
            await sfu.signal(
                data["call_id"],
                data["peer_id"],
                data.get("description"),
                data.get("candidate"),
                has_candidate=bool(data.get("has_candidate")),
            )
        except Exception as exc:
            log.warning("signal from %s refused: %r", data.get("peer_id"), exc)

    async def leave(data: dict[str, str]) -> list[dict[str, object]]:
        return await sfu.leave(data["call_id"], data["peer_id"])

    async def stats(data: dict[str, str]) -> list[dict[str, object]]:
        room = sfu.room(data["call_id"])
        return await room.stats() if room else []

    async def metrics(_: object = None) -> dict[str, object]:
        return await sfu.reading()

    for event, handler in (
        ("media:join", join),
        ("media:signal", signal),
        ("media:leave", leave),
        ("media:stats", stats),
        ("media:metrics", metrics),
    ):
        client.on(event, handler, namespace=NAMESPACE)
    await client.connect(
        app_url,
        namespaces=[NAMESPACE],
        auth={"token": node_token(secret_key)},
        transports=["websocket"],
        wait_timeout=30,
    )
    log.info("media node connected to %s", app_url)
    try:
        await client.wait()
    finally:
        await sfu.close()
