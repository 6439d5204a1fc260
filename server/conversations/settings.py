"""A practitioner's messaging settings: open to followed patients or not, and away mode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.errors import Forbidden, InvalidInput
from server.models import AwayException, Conversation, MessagingSettings, Role, User
from server.services import Services


@dataclass(frozen=True)
class AwaySettings:
    start: datetime | None
    until: datetime | None
    message: str | None
    exceptions: tuple[str, ...]


@dataclass(frozen=True)
class MessagingState:
    open: bool
    away: AwaySettings | None


def _require_practitioner(user: User) -> None:
    if user.role not in {Role.DOCTOR, Role.NURSE}:
        raise Forbidden("Ces réglages concernent les médecins et les infirmiers.")


async def get_settings(db: AsyncSession, user: User) -> MessagingState:
    _require_practitioner(user)
    row = await db.get(MessagingSettings, user.id)
    if row is None:
        return MessagingState(open=False, away=None)
    away = None
    if row.away_from or row.away_until:
        exceptions = await db.scalars(
            select(AwayException.patient_id).where(AwayException.user_id == user.id)
        )
        away = AwaySettings(row.away_from, row.away_until, row.away_message, tuple(exceptions))
    return MessagingState(open=row.open, away=away)


async def put_settings(
    db: AsyncSession, services: Services, user: User, state: MessagingState, *, ip: str | None
) -> tuple[MessagingState, list[str]]:
    """Replace the settings; return them and the ids of the conversations whose write state may
    have changed (for real-time notice)."""
    _require_practitioner(user)
    away = state.away
    if away is not None:
        if away.start is None and away.until is None:
            raise InvalidInput("away : indiquez au moins une date de début ou de fin")
        if away.start and away.until and away.until <= away.start:
            raise InvalidInput("away.until : la fin de l'absence doit suivre son début")
        if away.exceptions:
            # Exceptions are patients this practitioner follows: never a way to name strangers.
            followed = set(
                await db.scalars(
                    select(Conversation.patient_id).where(
                        Conversation.practitioner_id == user.id,
                        Conversation.patient_id.in_(set(away.exceptions)),
                    )
                )
            )
            unknown = [p for p in away.exceptions if p not in followed]
            if unknown:
                raise InvalidInput(f"away.exceptions : patient non suivi ({unknown[0]})")
    now = services.clock.now()
    row = await db.get(MessagingSettings, user.id)
    if row is None:
        row = MessagingSettings(user_id=user.id, updated_at=now)
        db.add(row)
    row.open = state.open
    row.away_from = away.start if away else None
    row.away_until = away.until if away else None
    row.away_message = away.message if away else None
    row.updated_at = now
    await db.execute(delete(AwayException).where(AwayException.user_id == user.id))
    for patient_id in dict.fromkeys(away.exceptions if away else ()):
        db.add(AwayException(user_id=user.id, patient_id=patient_id))
    audit.record(
        db,
        services.clock,
        "messaging.settings",
        actor_id=user.id,
        ip=ip,
        resource_type="user",
        resource_id=user.id,
        details={"open": state.open, "away": away is not None},
    )
    conversation_ids = list(
        await db.scalars(select(Conversation.id).where(Conversation.practitioner_id == user.id))
    )
    await db.commit()
    return await get_settings(db, user), conversation_ids
