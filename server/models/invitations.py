"""Invitations a doctor sends to a patient, and the deliveries that carry them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    EXPIRED = "expired"  # never stored: a pending invitation past its expiry reads as expired
    CANCELLED = "cancelled"


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[str] = id_column()
    doctor_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default=InvitationStatus.PENDING)
    # The hash of the link's token; replaced each time the invitation is (re)sent, so only the
    # latest link works. Null until the first delivery attempt makes one.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    status_changed_at: Mapped[datetime]
    accepted_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id"))


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"


class Delivery(Base):
    """One message to send (an email or an SMS) and what became of it.

    The message body is rendered at send time and never stored: it carries the invitation's link,
    whose token must not sit in the database in clear.
    """

    __tablename__ = "deliveries"

    id: Mapped[str] = id_column()
    invitation_id: Mapped[str] = mapped_column(ForeignKey("invitations.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
