"""Jobs that span regions: the list of regions on the job row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("regions", sa.JSON, nullable=True))
    op.create_index("ix_items_job_region_state", "items", ["job_id", "region", "state"])


def downgrade() -> None:
    op.drop_index("ix_items_job_region_state", "items")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("regions")
