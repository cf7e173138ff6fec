"""The steps of an item: a job of several actions (a recipe: recover) records each of an
item's steps, its action, outcome, attempts and timing.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_steps",
        sa.Column(
            "item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rung", sa.Integer, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("error_code", sa.String(80), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("last_state", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("item_id", "rung"),
    )
    op.create_index("ix_item_steps_job", "item_steps", ["job_id", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_item_steps_job", "item_steps")
    op.drop_table("item_steps")
