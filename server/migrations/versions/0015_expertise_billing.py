"""billing records of tele-expertise: call_id and patient_id optional, expertise_request_id and
the patient's names (a tele-expertise's patient has no account)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("billing_records") as batch:
        batch.add_column(sa.Column("expertise_request_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("patient_first_name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("patient_last_name", sa.String(100), nullable=True))
        batch.alter_column("call_id", existing_type=sa.String(32), nullable=True)
        batch.alter_column("patient_id", existing_type=sa.String(32), nullable=True)
        batch.create_foreign_key(
            "fk_billing_records_expertise_request_id_expertise_requests",
            "expertise_requests",
            ["expertise_request_id"],
            ["id"],
        )
        batch.create_unique_constraint(
            "uq_billing_records_expertise_request_id_professional_id",
            ["expertise_request_id", "professional_id"],
        )
        batch.create_index("ix_billing_records_expertise_request_id", ["expertise_request_id"])


def downgrade() -> None:
    with op.batch_alter_table("billing_records") as batch:
        batch.drop_index("ix_billing_records_expertise_request_id")
        batch.drop_constraint(
            "uq_billing_records_expertise_request_id_professional_id", type_="unique"
        )
        batch.drop_constraint(
            "fk_billing_records_expertise_request_id_expertise_requests", type_="foreignkey"
        )
        batch.drop_column("patient_last_name")
        batch.drop_column("patient_first_name")
        batch.drop_column("expertise_request_id")
