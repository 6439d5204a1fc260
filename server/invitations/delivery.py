"""Sending invitation messages, with retries, so that no invitation is silently lost.

Each attempt makes a fresh link token and stores its hash before sending: the message body, which
holds the token, is never stored. A failed attempt is retried after each of
``limits.DELIVERY_RETRY_DELAYS``; after the last one the delivery is ``failed`` and the doctor
sees it on the invitation.
Several server processes may run the worker: a conditional update claims each delivery once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, update

from server import limits
from server.invitations.service import effective_status
from server.models import Channel, Delivery, DeliveryStatus, Invitation, InvitationStatus, User
from server.notify.templates import invitation_email, invitation_sms
from server.outbound.senders import DeliveryError
from server.services import Services
from server.tokens import new_token, token_hash

log = logging.getLogger("teleconsult.delivery")

_CLAIMABLE = (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING)


def _due_condition(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Delivery.status.in_(_CLAIMABLE), Delivery.next_attempt_at <= now),
        # A worker that died mid-send: take over once its claim has lapsed.
        and_(Delivery.status == DeliveryStatus.SENDING, Delivery.claimed_until < now),
    )


async def deliver(services: Services, delivery_id: str) -> DeliveryStatus | None:
    """Make one attempt if the delivery is due and nobody else holds it; return its new status
    (None when there was nothing to do)."""
    now = services.clock.now()
    async with services.sessionmaker() as db:
        claimed = await db.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, _due_condition(now))
            .values(
                status=DeliveryStatus.SENDING,
                claimed_until=now + limits.DELIVERY_CLAIM_TIMEOUT,
                attempts=Delivery.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            await db.rollback()
            return None
        delivery = await db.get(Delivery, delivery_id)
        assert delivery is not None
        invitation = await db.get(Invitation, delivery.invitation_id)
        assert invitation is not None
        if effective_status(invitation, now) != InvitationStatus.PENDING:
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = f"invitation {effective_status(invitation, now)}: not sent"
            await db.commit()
            return DeliveryStatus.FAILED
        doctor = await db.get(User, invitation.doctor_id)
        assert doctor is not None
        token = new_token()
        invitation.token_hash = token_hash(token)
        await db.commit()

    link = f"{services.public_url}/i/{token}"
    error: str | None = None
    try:
        if delivery.channel == Channel.EMAIL:
            await services.email.send(
                invitation_email(
                    to=delivery.recipient,
                    patient_first_name=invitation.first_name,
                    doctor_name=doctor.display_name,
                    link=link,
                    expires_at=invitation.expires_at,
                )
            )
        else:
            await services.sms.send(
                invitation_sms(
                    to=delivery.recipient,
                    doctor_name=doctor.display_name,
                    link=link,
                    expires_at=invitation.expires_at,
                )
            )
    except DeliveryError as exc:
        error = str(exc)[:1000]

    finished = services.clock.now()
    async with services.sessionmaker() as db:
        fresh = await db.get(Delivery, delivery_id)
        assert fresh is not None
        if error is None:
            fresh.status = DeliveryStatus.SENT
            fresh.sent_at = finished
            fresh.last_error = None
        else:
            retries = limits.DELIVERY_RETRY_DELAYS
            if fresh.attempts <= len(retries):
                fresh.status = DeliveryStatus.RETRYING
                fresh.next_attempt_at = finished + retries[fresh.attempts - 1]
            else:
                fresh.status = DeliveryStatus.FAILED
            fresh.last_error = error
            log.warning(
                "delivery %s (%s) attempt %d failed: %s",
                delivery_id,
                fresh.channel,
                fresh.attempts,
                error,
            )
        fresh.claimed_until = None
        await db.commit()
        return DeliveryStatus(fresh.status)


async def deliver_due(services: Services, batch: int = 50) -> int:
    """Attempt every delivery that is due; return how many attempts were made."""
    now = services.clock.now()
    async with services.sessionmaker() as db:
        ids = list(
            await db.scalars(
                select(Delivery.id)
                .where(_due_condition(now))
                .order_by(Delivery.next_attempt_at)
                .limit(batch)
            )
        )
    done = 0
    for delivery_id in ids:
        if await deliver(services, delivery_id) is not None:
            done += 1
    return done


async def run_worker(services: Services) -> None:
    """The background loop started by the application: retries until cancelled at shutdown."""
    while True:
        try:
            await deliver_due(services)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery worker pass failed; trying again")
        await asyncio.sleep(limits.DELIVERY_POLL_INTERVAL_SECONDS)
