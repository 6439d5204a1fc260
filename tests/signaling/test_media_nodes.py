"""Only a media node of this install may connect to ``/media`` and take calls' media."""

from __future__ import annotations

import asyncio

import pytest
import socketio
from aiohttp.test_utils import TestServer

from media.node import NAMESPACE, node_token
from server.calls.keys import SFU_CALLS


async def test_a_media_node_needs_the_installs_token(server: TestServer) -> None:
    url = str(server.make_url("/")).rstrip("/")
    router = server.app[SFU_CALLS]
    intruder = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await intruder.connect(
            url,
            namespaces=[NAMESPACE],
            auth={"token": node_token("another-secret")},
            transports=["websocket"],
            wait_timeout=5,
        )
    assert router.nodes == {}

    node = socketio.AsyncClient(reconnection=False)
    await node.connect(
        url,
        namespaces=[NAMESPACE],
        auth={"token": node_token("test-secret")},
        transports=["websocket"],
        wait_timeout=5,
    )
    try:
        assert len(router.nodes) == 1
    finally:
        await node.disconnect()
    for _ in range(50):
        if not router.nodes:
            break
        await asyncio.sleep(0.05)
    assert router.nodes == {}
