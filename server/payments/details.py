"""A professional's payment details: how a patient pays other than online (transfer, card by
telephone, cheque). The pay page of each request shows its payee's details, so a patient who
does not pay online is not left asking "à qui, comment ?" (issue 26, item 7).

Bank details are not health data, but a patient sees them only on a request addressed to them
(the pay page's own authorization); a change is audited, since a swapped IBAN diverts money.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.errors import Forbidden
from server.models import PaymentDetails, Role, User
from server.services import Services

PAYEE_ROLES = (Role.DOCTOR, Role.NURSE)


@dataclass(frozen=True)
class NewDetails:
    holder: str | None
    iban: str | None
    bic: str | None
    phone: str | None
    cheque_payee: str | None
    address: str | None


async def get_details(db: AsyncSession, user_id: str) -> PaymentDetails | None:
    return await db.get(PaymentDetails, user_id)


async def put_details(
    db: AsyncSession, services: Services, user: User, new: NewDetails, *, ip: str | None
) -> PaymentDetails:
    """Replace the details (every field: an emptied field is removed). The caller commits."""
    if user.role not in PAYEE_ROLES:
        raise Forbidden("Les coordonnées de paiement concernent les médecins et infirmiers.")
    details = await db.get(PaymentDetails, user.id)
    if details is None:
        details = PaymentDetails(user_id=user.id, updated_at=services.clock.now())
        db.add(details)
    before = details.iban
    details.holder = new.holder
    details.iban = new.iban
    details.bic = new.bic
    details.phone = new.phone
    details.cheque_payee = new.cheque_payee
    details.address = new.address
    details.updated_at = services.clock.now()
    audit.record(
        db,
        services.clock,
        "payment_details.updated",
        actor_id=user.id,
        ip=ip,
        resource_type="user",
        resource_id=user.id,
        # The last four characters are enough to see a swap without copying the account.
        details={
            "iban_before": before[-4:] if before else None,
            "iban_after": new.iban[-4:] if new.iban else None,
        },
    )
    return details


def is_empty(details: PaymentDetails | None) -> bool:
    return details is None or not any(
        (details.iban, details.phone, details.address, details.cheque_payee)
    )
