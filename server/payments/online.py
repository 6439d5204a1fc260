"""Paying online: a checkout with the practice's provider, and the provider's signed
notifications (each applied once, checked against the amount and currency asked)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.db import insert_unless_exists
from server.errors import Conflict, Forbidden
from server.models import PaymentEvent, PaymentRequest, PaymentStatus, User
from server.payment_providers import CheckoutOrder, PaymentProvider
from server.payments.service import get_request, pay_url, status_fr, transition
from server.services import Services

log = logging.getLogger(__name__)


async def checkout(
    db: AsyncSession,
    services: Services,
    provider: PaymentProvider,
    user: User,
    request_id: str,
) -> str:
    """Start an online payment; the address the patient's browser goes to."""
    request = await get_request(db, services, user, request_id)
    if user.id != request.patient_id:
        raise Forbidden("Seul le patient règle sa demande de paiement.")
    if request.status != PaymentStatus.REQUESTED:
        raise Conflict(f"Cette demande est {status_fr(request)} : rien à régler.")
    link = pay_url(services, request.id)
    window = int(services.clock.now().timestamp()) // 600
    started = await provider.checkout(
        CheckoutOrder(
            request_id=request.id,
            amount_cents=request.amount_cents,
            currency=request.currency,
            label=request.label,
            success_url=f"{link}?retour=paye",
            cancel_url=f"{link}?retour=annule",
            email=user.email,
            idempotency_key=f"checkout-{request.id}-{window}",
        )
    )
    request.provider = provider.name
    request.provider_ref = started.reference
    await db.commit()
    return started.url


async def handle_notification(
    db: AsyncSession,
    services: Services,
    provider: PaymentProvider,
    payload: bytes,
    headers: dict[str, str],
) -> tuple[str, PaymentRequest | None]:
    """Apply a provider's signed notification once: ("duplicate" | "ignored" | "paid", request)."""
    notification = provider.notification(payload, headers)
    now = services.clock.now()
    request = (
        await db.get(PaymentRequest, notification.request_id) if notification.request_id else None
    )
    first = await insert_unless_exists(
        db,
        PaymentEvent.__table__,
        {
            "id": f"{provider.name}:{notification.event_id}",
            "payment_request_id": request.id if request else None,
            "kind": notification.kind[:80],
            "received_at": now,
        },
        ["id"],
    )
    if not first:
        await db.rollback()
        if request is not None:
            await db.refresh(request)
        return "duplicate", request
    outcome = "ignored"
    if notification.paid and request is not None:
        if request.provider_ref and notification.reference != request.provider_ref:
            log.warning("payment %s: notification for another checkout", request.id)
        # 30 of another currency is not 30 €: the amount and the currency must both match.
        if (
            notification.amount_cents is not None
            and notification.amount_cents != request.amount_cents
        ) or (notification.currency is not None and notification.currency != request.currency):
            log.warning(
                "payment %s: %s %s paid, %s %s asked; not marked paid",
                request.id,
                notification.amount_cents,
                notification.currency,
                request.amount_cents,
                request.currency,
            )
        elif await transition(
            db,
            request,
            (PaymentStatus.REQUESTED, PaymentStatus.EXPIRED),
            status=PaymentStatus.PAID,
            paid_at=now,
            paid_method="online",
        ):
            outcome = "paid"
            audit.record(
                db,
                services.clock,
                "payment.paid_online",
                actor_id=None,
                ip=None,
                resource_type="payment_request",
                resource_id=request.id,
                details={"provider": provider.name, "event": notification.event_id},
            )
    await db.commit()
    if request is not None:
        await db.refresh(request)
    return outcome, request
