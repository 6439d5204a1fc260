"""attachments.storage_name: files sealed under random names; sha256 kept only until sealed

The files themselves are sealed at start-up (server/storage.py, ``seal_plain_files``): a
migration has no data key.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("storage_name", sa.String(64), nullable=True))
        batch.alter_column("sha256", existing_type=sa.String(64), nullable=True)
        batch.create_unique_constraint("uq_attachments_storage_name", ["storage_name"])


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_constraint("uq_attachments_storage_name", type_="unique")
        batch.drop_column("storage_name")
