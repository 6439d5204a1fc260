"""Reaching people who are not on the page (domain.md §7): what is queued for them, their
choices of channels, their browsers' push subscriptions, and password resets."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class NoticeKind(enum.StrEnum):
    CALL_STARTED = "call_started"
    UNREAD = "unread"  # messages, documents, payment requests not read after the delay
    CONTACT_REQUEST = "contact_request"
    PASSWORD_RESET = "password_reset"
    EMAIL_VERIFICATION = "email_verification"
    TEST = "test"  # "tester" on the settings page
    EXPERTISE_REQUEST = "expertise_request"  # a new request, to the line's doctor of the day
    EXPERTISE_LATE = "expertise_late"  # past its delay: to the line's members
    EXPERTISE_LATE_REQUESTER = "expertise_late_req"  # later still: to the requester


class NoticeStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing to send any more: read meanwhile, on the page, no account


class Notice(Base):
    """One notification for one person, and what became of it. A row, not a task in memory: it
    survives a restart, and its unique ``dedupe_key`` makes it once per event and person. Its
    text is rendered at send time and never stored (it may carry a link's secret)."""

    __tablename__ = "notices"

    id: Mapped[str] = id_column()
    # None only for a password reset asked for an address no account has: the request does the
    # same work either way, so its timing tells nothing.
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    # The call, conversation, contact request or password reset the notice is about.
    subject_id: Mapped[str | None] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=NoticeStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Comma-separated channels that carried it ("sms,push"); a retry sends only the others.
    channels_sent: Mapped[str] = mapped_column(String(40), default="")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class UnreadNotice(Base):
    """Up to which message a member was told about a conversation: the next unread notice waits
    for a later message, so three messages in a row make one notification."""

    __tablename__ = "unread_notices"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    notified_seq: Mapped[int] = mapped_column(Integer, default=0)
    notified_at: Mapped[datetime]


class NotificationSettings(Base):
    """A person's channels and quiet hours. No row: every channel they can receive, no quiet
    hours."""

    __tablename__ = "notification_settings"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    email: Mapped[bool] = mapped_column(Boolean, default=True)
    sms: Mapped[bool] = mapped_column(Boolean, default=True)
    push: Mapped[bool] = mapped_column(Boolean, default=True)
    # "HH:MM" in Paris time; both set or both None. May wrap midnight (22:00 → 07:00).
    quiet_from: Mapped[str | None] = mapped_column(String(5))
    quiet_until: Mapped[str | None] = mapped_column(String(5))
    updated_at: Mapped[datetime]


class PushSubscription(Base):
    """A browser's Web Push subscription (its push service endpoint and RFC 8291 keys)."""

    __tablename__ = "push_subscriptions"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]


class PasswordReset(Base):
    """A request to choose a new password. Its secret (an email link's token or an SMS code) is
    made when the message leaves and only its hash is kept; valid one hour, single use."""

    __tablename__ = "password_resets"

    id: Mapped[str] = id_column()
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))  # "email" | "sms"
    secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong codes typed
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class EmailVerification(Base):
    """A link that confirms an account's address; only its token's hash is kept, made when the
    email leaves. It proves ``email``, the address it was sent to."""

    __tablename__ = "email_verifications"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    secret_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
