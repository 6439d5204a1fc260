"""tele-expertise: lines, members, rota, requests, templates

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.models.base

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = server.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("topic", sa.String(32), nullable=False, server_default=""))
        batch.drop_constraint("uq_conversations_practitioner_id_patient_id", type_="unique")
        batch.create_unique_constraint(
            "uq_conversations_practitioner_id_patient_id_topic",
            ["practitioner_id", "patient_id", "topic"],
        )
    op.create_table(
        "expertise_lines",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("specialty", sa.String(60), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("accepts", sa.JSON(), nullable=False),
        sa.Column("excludes", sa.JSON(), nullable=False),
        sa.Column("perimeter", sa.JSON(), nullable=False),
        sa.Column("questionnaire", sa.JSON(), nullable=False),
        sa.Column("delay_hours", sa.Integer(), nullable=False),
        sa.Column("manager_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("search_text", sa.String(600), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index("ix_expertise_lines_specialty", "expertise_lines", ["specialty"])
    op.create_index("ix_expertise_lines_manager_id", "expertise_lines", ["manager_id"])
    op.create_table(
        "expertise_line_members",
        sa.Column("line_id", sa.String(32), sa.ForeignKey("expertise_lines.id"), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("added_at", UTC, nullable=False),
    )
    op.create_index("ix_expertise_line_members_user_id", "expertise_line_members", ["user_id"])
    op.create_table(
        "expertise_rota",
        sa.Column("line_id", sa.String(32), sa.ForeignKey("expertise_lines.id"), primary_key=True),
        sa.Column("weekday", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
    )
    op.create_table(
        "expertise_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("line_id", sa.String(32), sa.ForeignKey("expertise_lines.id"), nullable=True),
        sa.Column("expert_id", sa.String(32), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("requester_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column(
            "conversation_id", sa.String(32), sa.ForeignKey("conversations.id"), nullable=False
        ),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("patient_first_name", sa.String(100), nullable=False),
        sa.Column("patient_last_name", sa.String(100), nullable=False),
        sa.Column("patient_birth_date", sa.Date(), nullable=False),
        sa.Column("patient_nir", sa.String(15), nullable=True),
        sa.Column("consent_at", UTC, nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(5), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("due_at", UTC, nullable=False),
        sa.Column("claimed_by_id", sa.String(32), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("claimed_at", UTC, nullable=True),
        sa.Column("answered_by_id", sa.String(32), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("answered_at", UTC, nullable=True),
        sa.Column("rejected_by_id", sa.String(32), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("rejected_at", UTC, nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("closed_at", UTC, nullable=True),
        sa.Column(
            "report_document_id", sa.String(32), sa.ForeignKey("documents.id"), nullable=True
        ),
        sa.Column("line_reminded_at", UTC, nullable=True),
        sa.Column("requester_told_at", UTC, nullable=True),
        sa.UniqueConstraint(
            "requester_id", "client_id", name="uq_expertise_requests_requester_id_client_id"
        ),
        sa.UniqueConstraint("conversation_id", name="uq_expertise_requests_conversation_id"),
    )
    for column in ("line_id", "expert_id", "requester_id", "status", "due_at"):
        op.create_index(f"ix_expertise_requests_{column}", "expertise_requests", [column])
    op.create_table(
        "expertise_templates",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("line_id", sa.String(32), sa.ForeignKey("expertise_lines.id"), nullable=True),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("title", sa.String(120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
    )
    op.create_index("ix_expertise_templates_owner_id", "expertise_templates", ["owner_id"])
    op.create_index("ix_expertise_templates_line_id", "expertise_templates", ["line_id"])


def downgrade() -> None:
    op.drop_table("expertise_templates")
    op.drop_table("expertise_requests")
    op.drop_table("expertise_rota")
    op.drop_table("expertise_line_members")
    op.drop_table("expertise_lines")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint("uq_conversations_practitioner_id_patient_id_topic", type_="unique")
        batch.create_unique_constraint(
            "uq_conversations_practitioner_id_patient_id", ["practitioner_id", "patient_id"]
        )
        batch.drop_column("topic")
