"""Request bodies as real networks deliver them: split over several TCP reads."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestServer

from tests.helpers import PASSWORD, Client


async def send_in_pieces(server: TestServer, path: str, body: bytes, pieces: int) -> bytes:
    """POST ``body`` in ``pieces`` TCP writes, each one flushed before the next is sent (as a
    slow phone network or a TLS proxy delivers it); returns the raw response."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    origin = str(server.make_url("")).rstrip("/")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nOrigin: {origin}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    writer.write(head)
    await writer.drain()
    step = -(-len(body) // pieces)
    for start in range(0, len(body), step):
        writer.write(body[start : start + step])
        await writer.drain()
        # Let the server read what has come so far, as it does when the rest is still on its way.
        await asyncio.sleep(0.05)
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response


async def test_a_login_split_over_several_reads_is_read_whole(
    server: TestServer, patient: Client
) -> None:
    """``read_json`` took whatever was buffered: the first half of the body, "not valid JSON"."""
    assert patient.user is not None
    body = json.dumps({"email": patient.user["email"], "password": PASSWORD}).encode()
    response = await send_in_pieces(server, "/api/auth/login", body, pieces=3)
    assert response.startswith(b"HTTP/1.1 200"), response[:300]
    assert b"tc_session=" in response


async def test_a_long_message_split_over_several_reads_is_read_whole(
    server: TestServer, patient: Client
) -> None:
    body = json.dumps(
        {"email": "new@example.fr", "password": PASSWORD, "first_name": "Né" * 40, "last_name": "L"}
    ).encode()
    response = await send_in_pieces(server, "/api/auth/register", body, pieces=4)
    assert response.startswith(b"HTTP/1.1 201"), response[:300]


async def test_a_body_over_the_limit_is_refused_whole_however_it_arrives(
    server: TestServer,
) -> None:
    body = json.dumps({"email": "x" * 70_000, "password": "p"}).encode()
    response = await send_in_pieces(server, "/api/auth/login", body, pieces=5)
    assert response.startswith(b"HTTP/1.1 413"), response[:300]
    assert b"64 Kio" in response  # the detail, JSON-escaped
