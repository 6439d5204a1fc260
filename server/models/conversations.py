"""Conversations between a patient and a practitioner's care team."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class Conversation(Base):
    """One per patient and practitioner: accepting a second invitation from the same doctor finds
    the existing conversation instead of opening another (the unique constraint guarantees it even
    under two simultaneous clicks)."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("practitioner_id", "patient_id", "topic"),)

    id: Mapped[str] = id_column()
    practitioner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    # How the patient came in: "invitation" or "contact_request"; "expertise": a tele-expertise
    # request's exchange between professionals (server/expertise/).
    origin: Mapped[str] = mapped_column(String(20))
    # "" for a patient's conversation (one per pair); a tele-expertise request's id for its
    # exchange, whose practitioner and "patient" are both the requester (the line's members are
    # participants), so one requester has one per request.
    topic: Mapped[str] = mapped_column(String(32), default="", server_default="")
    # None: follow the practitioner's messaging setting (domain.md §2).
    patient_can_write: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    # The seq of the latest message: incremented in the posting transaction, so gap-free.
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_message_at: Mapped[datetime | None]
