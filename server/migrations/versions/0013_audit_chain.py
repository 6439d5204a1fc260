"""audit log as a hash chain: audit_events.seq/prev_hash/row_hash and audit_chain_head

Rows already written are chained here, in the order they were written (time, then id).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.models.base
from server.audit.chain import GENESIS, HEAD_ID, row_digest

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = server.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("row_hash", sa.String(64), nullable=True))
    events = sa.table(
        "audit_events",
        sa.column("id", sa.String),
        sa.column("at", UTC),
        sa.column("actor_id", sa.String),
        sa.column("action", sa.String),
        sa.column("resource_type", sa.String),
        sa.column("resource_id", sa.String),
        sa.column("ip", sa.String),
        sa.column("details", sa.JSON),
        sa.column("seq", sa.BigInteger),
        sa.column("prev_hash", sa.String),
        sa.column("row_hash", sa.String),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(events).order_by(events.c.at, events.c.id)).mappings().all()
    seq, digest = 0, GENESIS
    for row in rows:
        seq += 1
        prev, digest = digest, row_digest(digest, seq, dict(row))
        connection.execute(
            events.update()
            .where(events.c.id == row["id"])
            .values(seq=seq, prev_hash=prev, row_hash=digest)
        )
    head = sa.table(
        "audit_chain_head",
        sa.column("id", sa.Integer),
        sa.column("seq", sa.BigInteger),
        sa.column("hash", sa.String),
    )
    connection.execute(head.insert().values(id=HEAD_ID, seq=seq, hash=digest))
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("row_hash", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_audit_events_seq", ["seq"])


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint("uq_audit_events_seq", type_="unique")
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
    op.drop_table("audit_chain_head")
