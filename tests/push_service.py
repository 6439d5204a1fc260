"""A Web Push service stand-in that checks what a real one would and reads what a browser would.

It refuses a request whose VAPID JWT (RFC 8292) is not signed by the key it names, is for
another audience, or has expired; it decrypts the aes128gcm payload (RFC 8291) with the
subscription's private key — as the browser does — and records it. A subscription can be
marked gone (410), as a push service does once the browser unsubscribed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One browser's subscription: the keys it made, and what reached it."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    received: list[dict[str, Any]] = field(default_factory=list)
    gone: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set at each push

    def subscription(self) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }


@dataclass
class PushService:
    origin: str = ""
    browsers: dict[str, Browser] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    vapid_keys: set[str] = field(default_factory=set)  # the "k" of each accepted request

    def new_browser(self) -> Browser:
        name = os.urandom(8).hex()
        browser = Browser(
            endpoint=f"{self.origin}/push/{name}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=os.urandom(16),
        )
        self.browsers[name] = browser
        return browser

    def _refuse(self, why: str) -> web.Response:
        self.refused.append(why)
        return web.Response(status=401, text=why)

    def _check_vapid(self, header: str) -> str | None:
        """RFC 8292 §3: ``vapid t=<JWT>, k=<public key>``; None when valid, else why not."""
        if not header.startswith("vapid "):
            return f"not a vapid authorization: {header[:30]!r}"
        params = dict(part.strip().split("=", 1) for part in header[6:].split(","))
        token, key = params.get("t", ""), params.get("k", "")
        try:
            signing_input, _, signature = token.rpartition(".")
            head, payload = (json.loads(unb64url(p)) for p in signing_input.split("."))
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
            raw = unb64url(signature)
            der = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature) as exc:
            return f"bad VAPID token: {exc!r}"
        if head.get("alg") != "ES256":
            return "VAPID token not ES256"
        if payload.get("aud") != self.origin:
            return f"VAPID audience {payload.get('aud')!r} is not {self.origin!r}"
        if not time.time() < payload.get("exp", 0) <= time.time() + 24 * 3600:
            return "VAPID token expired or valid for more than 24 h"
        if not str(payload.get("sub", "")).startswith(("mailto:", "https:")):
            return "VAPID token without a contact"
        self.vapid_keys.add(key)
        return None

    async def handle(self, request: web.Request) -> web.Response:
        browser = self.browsers.get(request.match_info["name"])
        if browser is None or browser.gone:
            return web.Response(status=410, text="subscription gone")
        why = self._check_vapid(request.headers.get("Authorization", ""))
        if why is not None:
            return self._refuse(why)
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return self._refuse("payload not aes128gcm")
        if "TTL" not in request.headers:
            return self._refuse("no TTL")
        plain = http_ece.decrypt(
            await request.read(),
            private_key=browser.private_key,
            auth_secret=browser.auth,
            version="aes128gcm",
        )
        browser.received.append(json.loads(plain))
        browser.arrived.set()
        return web.Response(status=201)


@pytest.fixture
async def push_service(aiohttp_server: Any) -> PushService:
    service = PushService()
    app = web.Application()
    app.router.add_post("/push/{name}", service.handle)
    server = await aiohttp_server(app)
    service.origin = str(server.make_url("")).rstrip("/")
    return service
