"""Standby offers: each participant of a peer-to-peer call keeps an offer ready for whoever joins
next, so that a newcomer's page can answer it while it loads and the connection is checked as
soon as the join arrives (the one in the call then only applies an answer).

Held in this process's memory: a standby is a convenience, never needed. A newcomer whose page
was served by another process, or who finds the standby taken, offers as before.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Standby:
    id: str
    description: dict[str, Any]


class StandbyOffers:
    def __init__(self) -> None:
        self._calls: dict[str, dict[str, Standby]] = {}

    def put(self, call_id: str, peer_id: str, description: dict[str, Any]) -> str:
        """The peer's next offer, replacing the one before (which its page has closed); returns
        the id a newcomer's answer names it by."""
        standby = Standby(secrets.token_hex(8), description)
        self._calls.setdefault(call_id, {})[peer_id] = standby
        return standby.id

    def of_call(self, call_id: str, peer_ids: set[str]) -> list[dict[str, Any]]:
        """The standby offers of these (active) peers of the call."""
        offers = self._calls.get(call_id, {})
        return [
            {"peer_id": peer_id, "standby_id": s.id, "description": s.description}
            for peer_id, s in offers.items()
            if peer_id in peer_ids
        ]

    def take(self, call_id: str, peer_id: str, standby_id: str) -> bool:
        """Claim the peer's standby for one newcomer: True once, and only for the offer still
        standing (one replaced since, or taken by someone else, gets False)."""
        offers = self._calls.get(call_id, {})
        current = offers.get(peer_id)
        if current is None or current.id != standby_id:
            return False
        del offers[peer_id]
        return True

    def drop(self, call_id: str, peer_id: str | None = None) -> None:
        """A peer left (or, without ``peer_id``, the call ended)."""
        if peer_id is None:
            self._calls.pop(call_id, None)
            return
        offers = self._calls.get(call_id)
        if offers is not None:
            offers.pop(peer_id, None)
            if not offers:
                del self._calls[call_id]
