"""Real-time events leave the domain through this interface; socket.io implements it.

Rooms: ``conv:{id}`` (members who subscribed to a conversation) and ``user:{id}`` (every tab of
one user). With Redis configured, an event published by one process reaches the sockets of all.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol


class EventPublisher(Protocol):
    """``room`` may be several rooms: a socket in more than one of them gets the event once.
    Sockets in ``skip_room`` do not get it (they learn the same thing from another event)."""

    async def publish(
        self,
        event: str,
        data: dict[str, Any],
        *,
        room: str | list[str],
        skip_room: str | None = None,
    ) -> None: ...

    async def end_sessions(self, session_ids: list[str], reason: str) -> None:
        """Close at once every socket of these sign-in sessions, on every process: the session
        ended (sign-out, password reset, account deactivated) and its pages must stop receiving.
        Called after the commit that ended them. ``reason`` is French, shown to the person."""
        ...

    async def online(self, user_ids: Collection[str]) -> set[str]:
        """Which of these people have a page of the app open now, on any process (they need
        no notification: the page tells them)."""
        ...


def conversation_room(conversation_id: str) -> str:
    return f"conv:{conversation_id}"


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def call_room(call_id: str) -> str:
    return f"call:{call_id}"


def peer_room(call_id: str, peer_id: str) -> str:
    """One peer of one call: a signal can only reach a socket that joined that call as that
    peer, since the room's name says both."""
    return f"call:{call_id}:peer:{peer_id}"


class NoEvents:
    """For command-line tools that change data with no socket to tell."""

    async def publish(
        self,
        event: str,
        data: dict[str, Any],
        *,
        room: str | list[str],
        skip_room: str | None = None,
    ) -> None:
        return None

    async def end_sessions(self, session_ids: list[str], reason: str) -> None:
        return None

    async def online(self, user_ids: Collection[str]) -> set[str]:
        return set()
