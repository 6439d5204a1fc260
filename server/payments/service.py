"""Payment requests: the doctor asks, the patient sees the amount and what it is for, pays online
(``online.py``) or at the practice, and the doctor sees what is still owed; reminders and expiry
are ``reminders.py``.

Statuses move one way: ``requested`` → ``paid`` | ``cancelled`` | ``expired`` (an expired request
can still be marked paid when the money arrives late). Every change is a conditional update, so
two confirmations at once, or a webhook delivered twice, change the status once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.billing.rules import euros
from server.conversations import model, posting
from server.conversations.service import find_conversation
from server.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.models import (
    Call,
    Message,
    PaymentRequest,
    PaymentStatus,
    Role,
    SecretaryAssignment,
    User,
    new_id,
)
from server.services import Services

log = logging.getLogger(__name__)
EXPIRES_AFTER = timedelta(days=30)
# Reminders of an unpaid request, counted from the request.
MAX_AMOUNT_CENTS = 100_000  # 1,000 €: beyond that, a typing error is the likelier story
PAID_METHODS = ("transfer", "card_terminal", "cheque", "cash", "other")


@dataclass(frozen=True)
class NewPaymentRequest:
    amount_cents: int
    currency: str
    label: str
    call_id: str | None = None
    client_id: str | None = None


@dataclass(frozen=True)
class Requested:
    request: PaymentRequest
    posted: model.Posted


def pay_url(services: Services, request_id: str) -> str:
    return f"{services.public_url}/p/{request_id}"


def _check(new: NewPaymentRequest) -> str:
    if new.currency != "EUR":
        raise InvalidInput("currency : seul l'euro (EUR) est accepté")
    if not 1 <= new.amount_cents <= MAX_AMOUNT_CENTS:
        raise InvalidInput(
            f"amount_cents : entre 1 centime et {euros(MAX_AMOUNT_CENTS)} (montant en centimes)"
        )
    label = " ".join(new.label.split())
    if not label:
        raise InvalidInput("label : dites ce que le patient règle (ex. « Téléconsultation »)")
    return label


async def create_request(
    db: AsyncSession,
    services: Services,
    user: User,
    conversation_id: str,
    new: NewPaymentRequest,
    *,
    ip: str | None,
) -> Requested:
    if user.role == Role.NURSE:
        raise Forbidden(
            "L'accompagnement infirmier d'une téléconsultation est pris en charge en tiers "
            "payant : rien n'est demandé au patient."
        )
    if user.role not in (Role.DOCTOR, Role.SECRETARY):
        raise Forbidden("Seuls le médecin et son secrétariat demandent un paiement.")
    view = await find_conversation(db, user, conversation_id)
    if new.client_id:
        earlier = await db.scalar(
            select(Message).where(
                Message.conversation_id == conversation_id,
                Message.author_id == user.id,
                Message.client_id == new.client_id,
            )
        )
        if earlier is not None:
            found = await db.scalar(
                select(PaymentRequest).where(PaymentRequest.message_id == earlier.id)
            )
            if found is None:
                raise InvalidInput("client_id : déjà utilisé pour un autre message")
            return Requested(found, await db.run_sync(posting.replay, earlier))
    label = _check(new)
    payee = user if user.role == Role.DOCTOR else view.practitioner
    if payee.role != Role.DOCTOR:
        raise Forbidden("Seul un médecin peut être payé par une demande de paiement.")
    if new.call_id is not None:
        call = await db.get(Call, new.call_id)
        if call is None or call.conversation_id != conversation_id:
            raise InvalidInput("call_id : appel inconnu dans cette conversation")
    now = services.clock.now()
    request_id = new_id()
    link = pay_url(services, request_id)
    body = (
        f"💶 Demande de paiement : {euros(new.amount_cents)} — {label}. "
        f"Pour régler en ligne ou voir les autres moyens de paiement : {link}"
    )
    holder: list[PaymentRequest] = []

    def add_request(message_id: str) -> None:
        request = PaymentRequest(
            id=request_id,
            conversation_id=conversation_id,
            payee_id=payee.id,
            created_by_id=user.id,
            patient_id=view.patient.id,
            call_id=new.call_id,
            amount_cents=new.amount_cents,
            currency=new.currency,
            label=label,
            status=PaymentStatus.REQUESTED,
            provider=services.settings.payment_provider,
            message_id=message_id,
            created_at=now,
            expires_at=now + EXPIRES_AFTER,
            reminders_sent=0,
        )
        db.add(request)
        holder.append(request)
        audit.record(
            db,
            services.clock,
            "payment.requested",
            actor_id=user.id,
            ip=ip,
            resource_type="payment_request",
            resource_id=request_id,
            details={"amount_cents": new.amount_cents, "conversation_id": conversation_id},
        )

    posted = await posting.post_message(
        db,
        services,
        user,
        conversation_id,
        model.NewMessage(client_id=new.client_id or f"payment:{request_id}", body=body),
        ip=ip,
        along=add_request,
    )
    await db.commit()
    if not holder:  # a concurrent retry with the same client_id won
        found = await db.scalar(
            select(PaymentRequest).where(PaymentRequest.message_id == posted.view.message.id)
        )
        assert found is not None
        return Requested(found, posted)
    return Requested(holder[0], posted)


async def _secretary_doctors(db: AsyncSession, user: User) -> list[str]:
    return list(
        await db.scalars(
            select(SecretaryAssignment.doctor_id).where(SecretaryAssignment.secretary_id == user.id)
        )
    )


async def get_request(
    db: AsyncSession, services: Services, user: User, request_id: str
) -> PaymentRequest:
    """The request if the user belongs to its conversation (404 otherwise); an overdue one is
    marked expired on the way."""
    request = await db.get(PaymentRequest, request_id)
    if request is None:
        raise NotFound("Demande de paiement introuvable.")
    try:
        await find_conversation(db, user, request.conversation_id)
    except NotFound:
        raise NotFound("Demande de paiement introuvable.") from None
    if request.status == PaymentStatus.REQUESTED and services.clock.now() >= request.expires_at:
        await transition(db, request, (PaymentStatus.REQUESTED,), status=PaymentStatus.EXPIRED)
        await db.commit()
        await db.refresh(request)
    return request


async def _visible(db: AsyncSession, user: User, columns: Any, conversation_id: str | None) -> Any:
    """``select(columns)`` over the requests the caller sees: what they are owed (doctor; a
    secretary for their doctors) or owe (patient), in one conversation if named."""
    query = select(columns)
    if conversation_id is not None:
        await find_conversation(db, user, conversation_id)
        query = query.where(PaymentRequest.conversation_id == conversation_id)
    elif user.role == Role.PATIENT:
        query = query.where(PaymentRequest.patient_id == user.id)
    elif user.role == Role.DOCTOR:
        query = query.where(PaymentRequest.payee_id == user.id)
    elif user.role == Role.SECRETARY:
        query = query.where(PaymentRequest.payee_id.in_(await _secretary_doctors(db, user)))
    else:
        raise Forbidden("Les demandes de paiement concernent les médecins et leurs patients.")
    return query


async def list_requests(
    db: AsyncSession,
    user: User,
    *,
    status: str | None = None,
    conversation_id: str | None = None,
) -> list[PaymentRequest]:
    """The latest requests the caller sees (500 at most, newest first)."""
    query = await _visible(db, user, PaymentRequest, conversation_id)
    if status is not None:
        query = query.where(PaymentRequest.status == status)
    return list(await db.scalars(query.order_by(PaymentRequest.created_at.desc()).limit(500)))


async def owed_cents(db: AsyncSession, user: User) -> int:
    """The total still requested, over every request the caller sees (not only the page of
    them listed): summed by the database."""
    query = await _visible(db, user, func.coalesce(func.sum(PaymentRequest.amount_cents), 0), None)
    total = await db.scalar(query.where(PaymentRequest.status == PaymentStatus.REQUESTED))
    return int(total or 0)


async def transition(
    db: AsyncSession,
    request: PaymentRequest,
    from_statuses: tuple[PaymentStatus, ...],
    **values: object,
) -> bool:
    result = await db.execute(
        update(PaymentRequest)
        .where(PaymentRequest.id == request.id, PaymentRequest.status.in_(from_statuses))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _require_professional(user: User) -> None:
    if user.role not in (Role.DOCTOR, Role.SECRETARY):
        raise Forbidden("Seuls le médecin et son secrétariat gèrent les demandes de paiement.")


async def cancel(
    db: AsyncSession, services: Services, user: User, request_id: str, *, ip: str | None
) -> PaymentRequest:
    request = await get_request(db, services, user, request_id)
    _require_professional(user)
    now = services.clock.now()
    if not await transition(
        db,
        request,
        (PaymentStatus.REQUESTED, PaymentStatus.EXPIRED),
        status=PaymentStatus.CANCELLED,
        cancelled_at=now,
    ):
        await db.refresh(request)  # what it became meanwhile
        raise Conflict(f"Cette demande ne peut plus être annulée : elle est {status_fr(request)}.")
    audit.record(
        db,
        services.clock,
        "payment.cancelled",
        actor_id=user.id,
        ip=ip,
        resource_type="payment_request",
        resource_id=request.id,
    )
    await db.commit()
    await db.refresh(request)
    return request


async def mark_paid(
    db: AsyncSession,
    services: Services,
    user: User,
    request_id: str,
    method: str,
    *,
    ip: str | None,
) -> PaymentRequest:
    """The practice confirms a payment received outside the online provider."""
    if method not in PAID_METHODS:
        raise InvalidInput(f"method : {', '.join(PAID_METHODS)}")
    request = await get_request(db, services, user, request_id)
    _require_professional(user)
    if not await transition(
        db,
        request,
        (PaymentStatus.REQUESTED, PaymentStatus.EXPIRED),
        status=PaymentStatus.PAID,
        paid_at=services.clock.now(),
        paid_method=method,
    ):
        await db.refresh(request)  # what it became meanwhile
        raise Conflict(f"Cette demande est déjà {status_fr(request)}.")
    audit.record(
        db,
        services.clock,
        "payment.marked_paid",
        actor_id=user.id,
        ip=ip,
        resource_type="payment_request",
        resource_id=request.id,
        details={"method": method},
    )
    await db.commit()
    await db.refresh(request)
    return request


def status_fr(request: PaymentRequest) -> str:
    return {
        PaymentStatus.REQUESTED: "en attente",
        PaymentStatus.PAID: "payée",
        PaymentStatus.CANCELLED: "annulée",
        PaymentStatus.EXPIRED: "expirée",
    }.get(PaymentStatus(request.status), request.status)
