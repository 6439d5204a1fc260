"""People, the practices they belong to, and their sign-in sessions."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class Role(enum.StrEnum):
    DOCTOR = "doctor"
    NURSE = "nurse"
    SECRETARY = "secretary"
    PATIENT = "patient"
    ADMIN = "admin"

    @property
    def is_professional(self) -> bool:
        return self in {Role.DOCTOR, Role.NURSE, Role.SECRETARY}

    @property
    def is_practitioner(self) -> bool:
        """Roles a patient can find and ask to connect with."""
        return self in {Role.DOCTOR, Role.NURSE}


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = id_column()
    # Stored lower-cased: one person, one account, however they type their address.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    # Lower-cased, accent-free "first last" for search by name.
    search_name: Mapped[str] = mapped_column(String(210), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    birth_date: Mapped[date | None] = mapped_column(Date)
    rpps: Mapped[str | None] = mapped_column(String(11), unique=True)
    specialty: Mapped[str | None] = mapped_column(String(60))
    sector: Mapped[str | None] = mapped_column(String(10))
    practice_id: Mapped[str | None] = mapped_column(ForeignKey("practices.id"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # None: a professional who signed up alone and waits for the install's administrator (they
    # may not invite, be found or act as a professional before).
    approved_at: Mapped[datetime | None]
    # None: an address nobody confirmed yet (a patient who signed up alone); the pages ask.
    email_verified_at: Mapped[datetime | None]
    # When the person ticked "j'ai lu la notice d'information" at sign-up (None: an account
    # made by an invitation before this was asked, or by an administrator).
    privacy_accepted_at: Mapped[datetime | None]

    @property
    def pending_approval(self) -> bool:
        return self.approved_at is None

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    @property
    def display_name(self) -> str:
        return display_name(self.role, self.first_name, self.last_name)


def display_name(role: str, first_name: str, last_name: str) -> str:
    """How a person is named to others ("Dr Claire Martin"); also from bare columns."""
    prefix = "Dr " if role == Role.DOCTOR else ""
    return f"{prefix}{first_name} {last_name}"


class SecretaryAssignment(Base):
    """A secretary works in the conversations of the doctors they are attached to."""

    __tablename__ = "secretary_assignments"

    secretary_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    doctor_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)


class AuthSession(Base):
    """A signed-in browser. Only the hash of its cookie token is stored, so a database leak does
    not hand out live sessions."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = id_column()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    idle_expires_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
