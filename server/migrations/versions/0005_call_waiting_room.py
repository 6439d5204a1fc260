"""call peers: ready_at (the device check as a waiting room)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.models.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_peers") as batch:
        batch.add_column(
            sa.Column("ready_at", server.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    # Everyone who joined before this existed came straight into the call.
    op.execute("UPDATE call_peers SET ready_at = joined_at")


def downgrade() -> None:
    with op.batch_alter_table("call_peers") as batch:
        batch.drop_column("ready_at")
