"""Team scale: who started a job, its accounts and role assumption, an item's account, and the
holders of a shared API quota.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("started_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("started_host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("caller_arn", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("accounts", sa.JSON, nullable=True))
        batch.add_column(sa.Column("assume", sa.JSON, nullable=True))
    op.create_index("ix_jobs_started_by_created_at", "jobs", ["started_by", "created_at"])
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("account", sa.String(12), nullable=True))
    op.create_table(
        "quota_holders",
        sa.Column("scope", sa.String(256), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("scope", "holder"),
    )


def downgrade() -> None:
    op.drop_table("quota_holders")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("account")
    op.drop_index("ix_jobs_started_by_created_at", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("assume")
        batch.drop_column("accounts")
        batch.drop_column("caller_arn")
        batch.drop_column("started_host")
        batch.drop_column("started_by")
