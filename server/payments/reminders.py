"""Reminders and expiry of payment requests: a background sweep, every few minutes, posts a
reminder in the conversation (and emails the patient, with no health content) and expires what
is left unpaid."""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.billing.rules import euros
from server.conversations import announce, model, posting
from server.models import Conversation, PaymentRequest, PaymentStatus, User
from server.outbound.senders import DeliveryError, Email
from server.payments.service import pay_url
from server.services import Services

log = logging.getLogger(__name__)

REMINDERS_AFTER = (timedelta(days=3), timedelta(days=10))
SWEEP_INTERVAL_SECONDS = 300


async def sweep(db: AsyncSession, services: Services) -> tuple[int, int]:
    """Expire overdue requests and remind patients of unpaid ones: (reminded, expired)."""
    now = services.clock.now()
    expired = await db.execute(
        update(PaymentRequest)
        .where(PaymentRequest.status == PaymentStatus.REQUESTED, PaymentRequest.expires_at <= now)
        .values(status=PaymentStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    )
    await db.commit()
    reminded = 0
    due = list(
        await db.scalars(
            select(PaymentRequest).where(
                PaymentRequest.status == PaymentStatus.REQUESTED,
                PaymentRequest.reminders_sent < len(REMINDERS_AFTER),
            )
        )
    )
    for request in due:
        if now - request.created_at < REMINDERS_AFTER[request.reminders_sent]:
            continue
        if await _remind(db, services, request):
            reminded += 1
    return reminded, int(expired.rowcount)  # type: ignore[attr-defined]


async def _remind(db: AsyncSession, services: Services, request: PaymentRequest) -> bool:
    count = request.reminders_sent
    # Claim this reminder first, so two sweepers never send it twice.
    claimed = await db.execute(
        update(PaymentRequest)
        .where(PaymentRequest.id == request.id, PaymentRequest.reminders_sent == count)
        .values(reminders_sent=count + 1, last_reminder_at=services.clock.now())
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        await db.rollback()
        return False
    await db.commit()
    payee = await db.get_one(User, request.payee_id)
    patient = await db.get_one(User, request.patient_id)
    link = pay_url(services, request.id)
    text = (
        f"Rappel : la demande de paiement de {euros(request.amount_cents)} "
        f"({request.label}) est toujours en attente. Pour régler : {link}"
    )
    posted = await posting.post_message(
        db,
        services,
        payee,
        request.conversation_id,
        model.NewMessage(client_id=f"payment-reminder:{request.id}:{count + 1}", body=text),
        ip=None,
    )
    await db.commit()
    body, members = await announce.prepare(db, posted)
    await db.commit()  # end the read transaction: nothing holds a lock while the mail goes out
    await announce.announce(services, posted, body, members)
    try:
        await services.email.send(
            Email(
                to=patient.email,
                subject=f"Rappel de paiement — {payee.display_name}",
                text=f"Bonjour {patient.first_name},\n\n{text}\n\nVous pouvez aussi régler "
                "directement au cabinet.\n",
                html=f"<p>Bonjour {html.escape(patient.first_name)},</p>"
                f"<p>{html.escape(text)}</p><p>Vous pouvez aussi régler directement au "
                "cabinet.</p>",
            )
        )
    except DeliveryError:
        log.warning("payment reminder %s: email not sent", request.id)
    return True


async def conversation_of(db: AsyncSession, request: PaymentRequest) -> Conversation:
    return await db.get_one(Conversation, request.conversation_id)


async def run_sweeper(services: Services) -> None:
    """The background loop: reminders and expiry, once every few minutes until cancelled."""
    while True:
        try:
            async with services.sessionmaker() as db:
                await sweep(db, services)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("payment sweep failed; trying again")
        await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
