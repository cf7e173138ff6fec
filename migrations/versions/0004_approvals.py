"""The two-person rule: whether a stored plan needs an approval, and who gave it, when, and why.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column(
                "require_approval", sa.Boolean, nullable=False, server_default=sa.false()
            )
        )
        batch.add_column(sa.Column("approved_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("approved_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("approval_comment", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("approval_comment")
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
        batch.drop_column("require_approval")
