"""The audit log as a hash chain (issue 24): each row carries the hash of the row before it and
of its own content, in the order rows were written.

An administrator who edits the database (an audit row, to hide an access) leaves a trace: the
edited row's hash no longer matches; a deleted row leaves a gap in ``seq`` and a broken link; rows
swapped break both. ``verify`` finds the first broken row; the head (last ``seq`` and hash),
printed daily in the server log, lets an operator keep a copy elsewhere and notice a chain
rebuilt from scratch.

Writers take turns on the one-row ``audit_chain_head`` table (locked until their transaction
ends: ``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serializes),
so several processes extend one chain without a fork. Events are chained when their transaction
flushes them, whichever way they were added (``audit.record`` or ``audit.insert_rows``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import Session, UOWTransaction

from server.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64
HEAD_ID = 1
CONTENT = ("id", "at", "actor_id", "action", "resource_type", "resource_id", "ip", "details")


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def row_digest(prev_hash: str, seq: int, content: dict[str, Any]) -> str:
    """The hash of a row: the previous row's hash, the row's place and every column it holds."""
    values = [seq] + [
        _iso(content["at"]) if name == "at" else content.get(name) for name in CONTENT
    ]
    payload = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


def _content(event_row: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event_row, name) for name in CONTENT}


def _take_head(session: Session) -> tuple[int, str]:
    head = session.execute(
        select(AuditChainHead.seq, AuditChainHead.hash)
        .where(AuditChainHead.id == HEAD_ID)
        .with_for_update()
    ).one_or_none()
    if head is None:
        # A database made by create_all (tests of models): the first writer makes the head.
        session.execute(insert(AuditChainHead).values(id=HEAD_ID, seq=0, hash=GENESIS))
        return 0, GENESIS
    return int(head.seq), str(head.hash)


def _move_head(session: Session, seq: int, digest: str) -> None:
    session.execute(
        update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(seq=seq, hash=digest)
    )


def chain_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Give rows about to be inserted (``audit.insert_rows``) their links."""
    if not rows:
        return
    seq, digest = _take_head(session)
    for row in rows:
        seq += 1
        row["seq"], row["prev_hash"] = seq, digest
        row["row_hash"] = digest = row_digest(digest, seq, row)
    _move_head(session, seq, digest)


@event.listens_for(Session, "before_flush")
def _chain_new_events(session: Session, _context: UOWTransaction, _instances: object) -> None:
    new = [o for o in session.new if isinstance(o, AuditEvent) and o.seq is None]
    if not new:
        return
    new.sort(key=lambda e: (_iso(e.at), e.id))
    seq, digest = _take_head(session)
    for row in new:
        seq += 1
        row.seq, row.prev_hash = seq, digest
        row.row_hash = digest = row_digest(digest, seq, _content(row))
    _move_head(session, seq, digest)


def intact(row: AuditEvent) -> bool:
    """The row still holds what was hashed when it was written (its link to the row before is
    checked by ``verify``)."""
    return row.row_hash == row_digest(row.prev_hash, row.seq, _content(row))


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    broken_seq: int | None = None
    broken_id: str | None = None


class Walker:
    """Walks rows in ``seq`` order, one at a time (a long log never sits in memory).
    ``from_start``: the first row must be the chain's first; otherwise the walk trusts the first
    row's link (``audit verify --from``)."""

    def __init__(self, head: tuple[int, str], *, from_start: bool) -> None:
        self.head = head
        self.from_start = from_start
        self.expected_seq: int | None = 1 if from_start else None
        self.expected_prev: str | None = GENESIS if from_start else None
        self.checked = 0
        self.last = (0, GENESIS)

    def _broken(self, row: AuditEvent, problem: str) -> Verdict:
        return Verdict(False, self.checked, self.head[0], self.head[1], problem, row.seq, row.id)

    def feed(self, row: AuditEvent) -> Verdict | None:
        """None while the chain holds; the verdict at the first broken row."""
        if self.expected_seq is not None and row.seq != self.expected_seq:
            return self._broken(
                row,
                f"rows {self.expected_seq} to {row.seq - 1} are missing before row {row.seq}"
                if row.seq > self.expected_seq
                else f"row {row.seq} is out of place (expected {self.expected_seq})",
            )
        if self.expected_prev is not None and row.prev_hash != self.expected_prev:
            return self._broken(row, f"row {row.seq} does not follow the row before it")
        if not intact(row):
            return self._broken(row, f"row {row.seq} was altered after it was written")
        self.checked += 1
        self.expected_seq, self.expected_prev = row.seq + 1, row.row_hash
        self.last = (row.seq, row.row_hash)
        return None

    def finish(self) -> Verdict:
        if (self.from_start or self.checked) and self.last != self.head:
            return Verdict(
                False,
                self.checked,
                self.head[0],
                self.head[1],
                f"the chain ends at row {self.last[0]} but its head says {self.head[0]}: "
                "its last rows were deleted or the head was changed",
                self.last[0] + 1,
                None,
            )
        return Verdict(True, self.checked, self.head[0], self.head[1])


def check(rows: Iterable[AuditEvent], head: tuple[int, str], *, from_start: bool) -> Verdict:
    walker = Walker(head, from_start=from_start)
    for row in rows:
        verdict = walker.feed(row)
        if verdict is not None:
            return verdict
    return walker.finish()
