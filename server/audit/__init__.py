"""The audit log of access to health data and of every security-relevant action."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.clock import Clock
from server.models import AuditEvent


def record(
    db: AsyncSession,
    clock: Clock,
    action: str,
    *,
    actor_id: str | None,
    ip: str | None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an event to the caller's transaction: written if and only if the action is."""
    db.add(
        AuditEvent(
            at=clock.now(),
            actor_id=actor_id,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            ip=ip,
            details=details,
        )
    )
