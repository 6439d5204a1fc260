"""What follows a consultation: documents handed over, payment requests, and billing records
(domain.md §4)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class Document(Base):
    """A document sent in a conversation. Never changed once sent: a correction is a new
    document whose ``replaces_id`` points at the old one."""

    __tablename__ = "documents"

    id: Mapped[str] = id_column()
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))  # prescription | sick_leave | other
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"))
    attachment_id: Mapped[str] = mapped_column(ForeignKey("attachments.id"))
    replaces_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id"))
    generated: Mapped[bool] = mapped_column(Boolean, default=False)
    # What was written on a generated document (lines, sick-leave dates), for the record.
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]


class PaymentStatus(enum.StrEnum):
    REQUESTED = "requested"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class PaymentRequest(Base):
    __tablename__ = "payment_requests"

    id: Mapped[str] = id_column()
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    # Who is owed (the conversation's practitioner), and who typed the request (may be a
    # secretary).
    payee_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id"))
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    label: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default=PaymentStatus.REQUESTED)
    provider: Mapped[str] = mapped_column(String(20))  # builtin | stripe
    # The provider's own reference (a Stripe Checkout Session id).
    provider_ref: Mapped[str | None] = mapped_column(String(255), index=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    # How it was paid: online (the provider), or confirmed by the practice (transfer, card on
    # the practice's terminal, cheque, cash).
    paid_method: Mapped[str | None] = mapped_column(String(20))
    cancelled_at: Mapped[datetime | None]
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    last_reminder_at: Mapped[datetime | None]


class PaymentEvent(Base):
    """A provider notification already handled: a webhook delivered twice changes nothing the
    second time."""

    __tablename__ = "payment_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # "stripe:evt_…"
    payment_request_id: Mapped[str | None] = mapped_column(ForeignKey("payment_requests.id"))
    kind: Mapped[str] = mapped_column(String(80))
    received_at: Mapped[datetime]


class BillingProfile(Base):
    """What billing needs about a professional beyond their account."""

    __tablename__ = "billing_profiles"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    # Numéro d'identification Assurance Maladie of the practice (9 characters).
    am_number: Mapped[str | None] = mapped_column(String(9))
    practice_postcode: Mapped[str | None] = mapped_column(String(5))
    # Conventioned acts a year, all kinds: the base of the 20 % teleconsultation cap.
    yearly_acts: Mapped[int | None] = mapped_column(Integer)
    overseas: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class PaymentDetails(Base):
    """How a patient may pay a professional other than online: the practice's bank details for
    a transfer, a telephone number to pay by card, an address for a cheque. Shown on the pay
    page of that professional's requests; never part of a notification."""

    __tablename__ = "payment_details"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(140))  # "titulaire du compte"
    iban: Mapped[str | None] = mapped_column(String(34))  # compact, upper case, checked
    bic: Mapped[str | None] = mapped_column(String(11))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    cheque_payee: Mapped[str | None] = mapped_column(String(140))  # "à l'ordre de"
    address: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime]


class BillingRecord(Base):
    """One professional's validated coding of one teleconsultation (``call_id``) or of one
    tele-expertise (``expertise_request_id``: RQD, TE2): what the practice's SESAM-Vitale
    software needs to make the FSE in SESAM-sans-Vitale mode."""

    __tablename__ = "billing_records"
    __table_args__ = (
        UniqueConstraint("call_id", "professional_id"),
        UniqueConstraint("expertise_request_id", "professional_id"),
    )

    id: Mapped[str] = id_column()
    call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id"), index=True)
    expertise_request_id: Mapped[str | None] = mapped_column(
        ForeignKey("expertise_requests.id"), index=True
    )
    professional_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # None for a tele-expertise: its patient has no account; their names are below.
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    patient_first_name: Mapped[str | None] = mapped_column(String(100))
    patient_last_name: Mapped[str | None] = mapped_column(String(100))
    act_date: Mapped[date] = mapped_column(Date, index=True)
    acts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    total_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    patient_nir: Mapped[str] = mapped_column(String(15))
    patient_birth_date: Mapped[date] = mapped_column(Date)
    birth_rank: Mapped[int] = mapped_column(Integer, default=1)
    insurance_scheme: Mapped[str | None] = mapped_column(String(10))
    insurance_fund: Mapped[str | None] = mapped_column(String(10))
    pathway: Mapped[str | None] = mapped_column(String(20))
    exemption: Mapped[str | None] = mapped_column(String(20))
    professional_role: Mapped[str] = mapped_column(String(20))
    professional_rpps: Mapped[str | None] = mapped_column(String(11))
    professional_am_number: Mapped[str | None] = mapped_column(String(9))
    prescriber_rpps: Mapped[str | None] = mapped_column(String(11))
    teleconsultation: Mapped[bool] = mapped_column(Boolean, default=True)
    warnings: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
