"""Web Push (RFC 8030): the payload encrypted for the browser (RFC 8291, aes128gcm) and the
request signed with this server's VAPID key (RFC 8292), by ``pywebpush`` over aiohttp.

The push service keeps nothing readable: it forwards ciphertext to the browser, whose service
worker (``web/static/sw.js``) decrypts it and shows the notification.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid  # type: ignore[import-untyped]
from pywebpush import WebPushException, webpush_async  # type: ignore[import-untyped]

from server import limits
from server.outbound.senders import DeliveryError


@dataclass(frozen=True)
class Push:
    """What the service worker shows: a title, a line, and the page a tap opens."""

    title: str
    body: str
    url: str
    tag: str  # a later push with the same tag replaces the earlier one on the phone


@dataclass(frozen=True)
class Endpoint:
    url: str
    p256dh: str
    auth: str


class SubscriptionGone(DeliveryError):
    """The push service says the subscription no longer exists (404/410): forget it."""


class PushSender(Protocol):
    async def send(self, endpoint: Endpoint, push: Push) -> None: ...


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_key(text: str) -> ec.EllipticCurvePrivateKey:
    """The VAPID private key: PEM, or the base64url raw scalar some tools print."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the VAPID key must be a P-256 (prime256v1) private key")
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The ``applicationServerKey`` a page passes to ``pushManager.subscribe``."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(point)


class WebPushSender:
    def __init__(self, private_key: str, contact: str, http: aiohttp.ClientSession) -> None:
        self._key = load_key(private_key)
        self._vapid = Vapid(private_key=self._key)
        self._contact = contact
        self._http = http

    @property
    def public_key(self) -> str:
        return public_key_b64(self._key)

    async def send(self, endpoint: Endpoint, push: Push) -> None:
        payload: dict[str, Any] = {
            "title": push.title,
            "body": push.body,
            "url": push.url,
            "tag": push.tag,
        }
        try:
            await webpush_async(
                subscription_info={
                    "endpoint": endpoint.url,
                    "keys": {"p256dh": endpoint.p256dh, "auth": endpoint.auth},
                },
                data=json.dumps(payload, ensure_ascii=False),
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._contact},
                # A call's link is worth nothing an hour later; a message notice, a day.
                ttl=limits.PUSH_TTL_SECONDS,
                timeout=limits.DELIVERY_TIMEOUT_SECONDS,
                aiohttp_session=self._http,
            )
        except WebPushException as exc:
            status = exc.status_code
            if status in (404, 410):
                raise SubscriptionGone(f"push subscription gone ({status})") from exc
            raise DeliveryError(f"push service refused: {str(exc)[:300]}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"push service unreachable: {exc}") from exc


class NoPush:
    """For command-line tools, which send no pushes."""

    async def send(self, endpoint: Endpoint, push: Push) -> None:
        raise DeliveryError("the command line sends no pushes")
