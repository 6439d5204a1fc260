"""Secret tokens (session cookies, invitation links): random, and stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets

from server import limits


def new_token() -> str:
    return secrets.token_urlsafe(limits.TOKEN_BYTES)


def token_hash(token: str) -> str:
    """SHA-256 is enough here: the tokens have 256 bits of entropy, nothing to brute-force."""
    return hashlib.sha256(token.encode()).hexdigest()
