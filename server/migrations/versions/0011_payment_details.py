"""payment details of a professional shown on the pay page; users.privacy_accepted_at

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = server.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payment_details",
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("holder", sa.String(140), nullable=True),
        sa.Column("iban", sa.String(34), nullable=True),
        sa.Column("bic", sa.String(11), nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("cheque_payee", sa.String(140), nullable=True),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("privacy_accepted_at", UTC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("privacy_accepted_at")
    op.drop_table("payment_details")
