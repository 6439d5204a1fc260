"""Tele-expertise (domain.md §5): advice lines run by a team, requests from other
professionals about a patient who is not present, answered in a conversation between them."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class ExpertiseStatus(enum.StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    ANSWERED = "answered"
    REJECTED = "rejected"
    CLOSED = "closed"


class ExpertiseLine(Base):
    """A team's advice line: what it accepts, from where, what it asks before a request, how
    soon it answers."""

    __tablename__ = "expertise_lines"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(120))
    specialty: Mapped[str] = mapped_column(String(60), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    instructions: Mapped[str] = mapped_column(Text, default="")
    accepts: Mapped[list[str]] = mapped_column(JSON, default=list)
    excludes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Postcode prefixes of the requesters it serves ("35", "56100"); empty: everyone.
    perimeter: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{key, label, type: text|yes_no|choice, choices?, required}]
    questionnaire: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    delay_hours: Mapped[int] = mapped_column(Integer)
    manager_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    # Lower-cased, accent-free name, specialty and description, for the directory's search.
    search_text: Mapped[str] = mapped_column(String(600))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class ExpertiseLineMember(Base):
    __tablename__ = "expertise_line_members"

    line_id: Mapped[str] = mapped_column(ForeignKey("expertise_lines.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    added_at: Mapped[datetime]


class ExpertiseRota(Base):
    """The doctor of the day ("médecin d'avis du jour"), per weekday (0 = Monday)."""

    __tablename__ = "expertise_rota"

    line_id: Mapped[str] = mapped_column(ForeignKey("expertise_lines.id"), primary_key=True)
    weekday: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))


class ExpertiseRequest(Base):
    __tablename__ = "expertise_requests"
    __table_args__ = (UniqueConstraint("requester_id", "client_id"),)

    id: Mapped[str] = id_column()
    line_id: Mapped[str | None] = mapped_column(ForeignKey("expertise_lines.id"), index=True)
    expert_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    requester_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), unique=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    patient_first_name: Mapped[str] = mapped_column(String(100))
    patient_last_name: Mapped[str] = mapped_column(String(100))
    patient_birth_date: Mapped[date] = mapped_column(Date)
    patient_nir: Mapped[str | None] = mapped_column(String(15))
    # When the requester confirmed the patient was informed and consented (required).
    consent_at: Mapped[datetime]
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    question: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(5))  # async | sync
    status: Mapped[str] = mapped_column(String(10), index=True)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)
    claimed_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None]
    answered_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    answered_at: Mapped[datetime | None]
    rejected_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    rejected_at: Mapped[datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    report_document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"))
    # Past due_at: the line is reminded once, then the requester told once.
    line_reminded_at: Mapped[datetime | None]
    requester_told_at: Mapped[datetime | None]


class ExpertiseTemplate(Base):
    """An answer text a line's members (scope "line") or one expert ("personal") reuse."""

    __tablename__ = "expertise_templates"

    id: Mapped[str] = id_column()
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    line_id: Mapped[str | None] = mapped_column(ForeignKey("expertise_lines.id"), index=True)
    scope: Mapped[str] = mapped_column(String(10))  # line | personal
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
