"""users.approved_at: professional accounts are approved by the install's admin

A doctor or nurse who signs up alone waits for the administrator's approval before inviting
patients or being found by them (anyone could sign up as a doctor with any Luhn-valid RPPS and
send invitation emails from the platform). Accounts that exist are approved as of their creation.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.models.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("approved_at", server.models.base.UTCDateTime(timezone=True), nullable=True),
    )
    op.execute("UPDATE users SET approved_at = created_at")


def downgrade() -> None:
    op.drop_column("users", "approved_at")
