"""The audit log of access to health data and of every security-relevant action."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server.audit import chain
from server.clock import Clock
from server.models import AuditEvent, new_id


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
    event = row(
        clock.now(),
        action,
        actor_id=actor_id,
        ip=ip,
        resource_type=resource_type,
        resource_id=resource_id,
        details=details,
    )
    db.add(AuditEvent(**event))


def row(
    at: datetime,
    action: str,
    *,
    actor_id: str | None,
    ip: str | None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An event as a row for ``insert_rows``: where many are written at once (a batch of
    messages), one INSERT costs less than as many ORM objects."""
    return {
        "id": new_id(),
        "at": at,
        "actor_id": actor_id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "ip": ip,
        "details": details,
    }


_EVENTS = cast(Table, AuditEvent.__table__)


def insert_rows(db: Session, rows: list[dict[str, Any]]) -> None:
    """Add events to the caller's transaction, like ``record`` (sync: a batch of messages is
    written by sync code)."""
    if rows:
        chain.chain_rows(db, rows)
        db.execute(insert(_EVENTS), rows)
