"""A call's life between its participants: who takes the offer a page sends with its join, and
when an empty call ends. Plain call-domain rules, for the signaling layer to apply."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.calls.service import end_call
from server.models import Call, CallPeer, CallStatus, User
from server.services import Services

# A call everyone left ends after this grace: long enough to come back after a reload or a
# network change, short enough that the doctor's list does not show a call nobody is in.
EMPTY_CALL_GRACE = timedelta(minutes=2)


def offer_target(others: list[tuple[CallPeer, User]]) -> str | None:
    """Who gets the offer a page sends with its join: the first in the call who is not in the
    device check (the doctor who started it, usually), else the first."""
    ready = [p for p, _ in others if p.ready_at is not None]
    first = ready or [p for p, _ in others]
    return first[0].id if first else None


async def end_if_still_empty(db: AsyncSession, services: Services, call_id: str) -> bool:
    """Ends the call if nobody came back within the grace; True if it ended it."""
    call = await db.get(Call, call_id)
    if call is None or call.status == CallStatus.ENDED or call.empty_since is None:
        return False
    if services.clock.now() - call.empty_since < EMPTY_CALL_GRACE:
        return False
    await end_call(db, services, call, user_id=None, ip=None)
    return True
