"""An SMS gateway stand-in: the HTTP endpoint ``TC_SMS_URL`` points at, keeping what it gets."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web


class SmsGateway:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0

    async def handle(self, request: web.Request) -> web.Response:
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=503, text="gateway overloaded")
        self.received.append(await request.json())
        return web.json_response({"id": "msg-1"})


@pytest.fixture
async def sms_gateway(aiohttp_server: Any) -> tuple[SmsGateway, str]:
    gateway = SmsGateway()
    app = web.Application()
    app.router.add_post("/send", gateway.handle)
    server = await aiohttp_server(app)
    return gateway, str(server.make_url("/send"))
