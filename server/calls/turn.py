"""ICE servers for a call, with time-limited TURN credentials (coturn's REST API scheme).

coturn with ``use-auth-secret`` accepts username ``<expiry unix time>:<user id>`` and password
``base64(HMAC-SHA1(secret, username))``; nothing is stored, and a leaked credential dies at its
expiry. coturn also answers STUN on the same address, so each TURN server is offered as STUN too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

# Long enough for a consultation and its reconnections, short enough to be useless if leaked.
CREDENTIAL_LIFETIME = timedelta(hours=4)


def turn_credentials(secret: str, user_id: str, now: datetime) -> tuple[str, str]:
    expiry = int((now + CREDENTIAL_LIFETIME).timestamp())
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def _stun_for(turn_url: str) -> str | None:
    # "turn:host:3478?transport=udp" → "stun:host:3478"
    scheme, _, rest = turn_url.partition(":")
    if scheme not in {"turn", "turns"}:
        return None
    host_port = rest.split("?", 1)[0]
    return f"stun:{host_port}" if urlsplit(f"//{host_port}").hostname else None


def ice_servers(
    turn_urls: tuple[str, ...], secret: str | None, user_id: str, now: datetime
) -> list[dict[str, Any]]:
    """The ``iceServers`` list for ``RTCPeerConnection``. Without TURN configured it is empty:
    peers on the same network connect with their host candidates."""
    if not turn_urls:
        return []
    stun = sorted({s for s in (_stun_for(u) for u in turn_urls) if s})
    servers: list[dict[str, Any]] = [{"urls": stun}] if stun else []
    if secret:
        username, credential = turn_credentials(secret, user_id, now)
        servers.append({"urls": list(turn_urls), "username": username, "credential": credential})
    return servers
