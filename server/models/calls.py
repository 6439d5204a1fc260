"""Video calls: the call, who may join, each connected peer, and the call's timeline."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class CallStatus(enum.StrEnum):
    RINGING = "ringing"  # created, nobody but the caller joined yet
    ACTIVE = "active"  # two or more peers have been in it
    ENDED = "ended"


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[str] = id_column()
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    created_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    mode: Mapped[str] = mapped_column(String(10))  # "p2p" or "sfu"
    status: Mapped[str] = mapped_column(String(10), default=CallStatus.RINGING)
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # Assisted teleconsultation: the nurse, and where the assistance took place (billing needs it).
    nurse_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    assistance: Mapped[str | None] = mapped_column(String(10))  # "in_room" | "remote"
    # Where the nurse accompanied it: planned_visit (TLS), dedicated_place (TLL), home (TLD).
    assistance_place: Mapped[str | None] = mapped_column(String(20))
    # When the last peer left; the call ends if nobody comes back in time.
    empty_since: Mapped[datetime | None]


class CallPeer(Base):
    """One connected browser tab in a call. A user with two tabs is two peers; a reload is a new
    peer of the same user, and the old one is marked left."""

    __tablename__ = "call_peers"

    id: Mapped[str] = id_column()
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    sid: Mapped[str] = mapped_column(String(64), index=True)  # the socket.io session
    joined_at: Mapped[datetime]
    # When the participant left the device check and came into the call (their camera and
    # microphone go out from then); None while they are still checking, connected but silent.
    ready_at: Mapped[datetime | None]
    left_at: Mapped[datetime | None]


class CallEvent(Base):
    """The timeline: created, joined, left, ended, nurse invited, and quality samples."""

    __tablename__ = "call_events"

    id: Mapped[str] = id_column()
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    peer_id: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
