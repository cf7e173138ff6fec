"""Schedules: recurring jobs, and the slots each one has handled (one job per slot); what was
told of each job's end (notifications); when a job waiting for its maintenance window goes on.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("notifications", sa.JSON, nullable=True))
        batch.add_column(sa.Column("next_window_at", sa.Float, nullable=True))
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("cron", sa.String(128), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("catch_up", sa.Float, nullable=False),
        sa.Column("job", sa.JSON, nullable=False),
        sa.Column("source", sa.String(1024), nullable=True),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("cursor", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.Column("last_job_id", sa.String(32), nullable=True),
    )
    op.create_table(
        "schedule_slots",
        sa.Column(
            "schedule",
            sa.String(64),
            sa.ForeignKey("schedules.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("slot_at", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("schedule", "slot_at"),
    )


def downgrade() -> None:
    op.drop_table("schedule_slots")
    op.drop_table("schedules")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("next_window_at")
        batch.drop_column("notifications")
