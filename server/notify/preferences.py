"""Each person's channels and quiet hours (``GET/PUT /api/me/notifications``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.clock import PARIS
from server.models import NotificationSettings


@dataclass(frozen=True)
class Preferences:
    email: bool = True
    sms: bool = True
    push: bool = True
    quiet_from: str | None = None  # "HH:MM", Paris time
    quiet_until: str | None = None


async def preferences_of(db: AsyncSession, user_id: str) -> Preferences:
    row = await db.get(NotificationSettings, user_id)
    if row is None:
        return Preferences()
    return Preferences(row.email, row.sms, row.push, row.quiet_from, row.quiet_until)


async def save_preferences(
    db: AsyncSession, now: datetime, user_id: str, prefs: Preferences
) -> None:
    row = await db.get(NotificationSettings, user_id)
    if row is None:
        row = NotificationSettings(user_id=user_id, updated_at=now)
        db.add(row)
    row.email, row.sms, row.push = prefs.email, prefs.sms, prefs.push
    row.quiet_from, row.quiet_until = prefs.quiet_from, prefs.quiet_until
    row.updated_at = now


def _clock_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet_until(prefs: Preferences, now: datetime) -> datetime | None:
    """When the person's quiet hours end, if ``now`` is inside them (they may wrap midnight:
    22:00 → 07:00); None outside them or without quiet hours."""
    if not prefs.quiet_from or not prefs.quiet_until:
        return None
    start, end = _clock_time(prefs.quiet_from), _clock_time(prefs.quiet_until)
    if start == end:
        return None
    local = now.astimezone(PARIS)
    here = local.time().replace(second=0, microsecond=0)
    inside = start <= here < end if start < end else here >= start or here < end
    if not inside:
        return None
    day = local.date() if here < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=PARIS)
