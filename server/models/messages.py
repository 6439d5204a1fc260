"""Messages, attachments, read marks, added participants, and each professional's messaging
settings (domain.md §2)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # The gap-free order of a conversation: what a reconnecting client asks "after seq N" of.
        # Its index also serves every lookup by conversation (no index on conversation_id alone).
        UniqueConstraint("conversation_id", "seq"),
        # Idempotency: the same client id from the same author is the same message.
        UniqueConstraint("conversation_id", "author_id", "client_id"),
    )

    id: Mapped[str] = id_column()
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    seq: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    # Patients' messages carry a reason (motif); professionals' do not.
    reason: Mapped[str | None] = mapped_column(String(30))
    # Professionals' messages: may the patient answer this one?
    reply_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Attachment(Base):
    """An uploaded file, stored encrypted under a random name (``storage_name``) in the data
    directory; the row says who uploaded it and, once posted, which message carries it."""

    __tablename__ = "attachments"

    id: Mapped[str] = id_column()
    uploader_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"), index=True)
    # None once sealed: earlier versions named files by the SHA-256 of their content, which
    # told who held the same file; kept only until start-up seals the file (storage.py).
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_name: Mapped[str | None] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class ReadMark(Base):
    __tablename__ = "read_marks"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    last_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    read_at: Mapped[datetime]


class ConversationParticipant(Base):
    """A professional added to a conversation (a nurse, a colleague)."""

    __tablename__ = "conversation_participants"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    added_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime]


class MessagingSettings(Base):
    """A practitioner's choice of who may write (domain.md §2). No row: the defaults."""

    __tablename__ = "messaging_settings"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    open: Mapped[bool] = mapped_column(Boolean, default=False)
    away_from: Mapped[datetime | None]
    away_until: Mapped[datetime | None]
    away_message: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class AwayException(Base):
    """A patient who may still write while the practitioner is away."""

    __tablename__ = "away_exceptions"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
