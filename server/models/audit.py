"""The audit log: who did what to which resource, when, from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class AuditEvent(Base):
    """One event. ``seq``, ``prev_hash`` and ``row_hash`` make the log a hash chain, in the order
    rows were written (server/audit/chain.py): a row edited, deleted or moved in the database
    breaks it, and ``teleconsult audit verify`` names the row."""

    __tablename__ = "audit_events"

    id: Mapped[str] = id_column()
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(60))
    resource_type: Mapped[str | None] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Set when the row is written (chain.py), never by the caller.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The chain's last link: one row, locked by each transaction that writes events, so writers
    on every process take turns and the chain has no fork."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
