"""Connection requests a patient sends to a practitioner they found by name."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class ContactRequestStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class ContactRequest(Base):
    __tablename__ = "contact_requests"

    id: Mapped[str] = id_column()
    patient_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    practitioner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    message: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=ContactRequestStatus.PENDING)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id"))
