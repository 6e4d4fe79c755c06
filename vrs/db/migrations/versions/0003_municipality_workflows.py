"""Municipality workflows: the coupon serial sequence of each municipality.

Revision ID: 0003_municipality_workflows
Revises: 0001_initial
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_municipality_workflows"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coupon_sequence",
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("next_serial", sa.Integer(), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["municipality_code"], ["municipality.code"]),
        sa.PrimaryKeyConstraint("municipality_code"),
    )


def downgrade() -> None:
    op.drop_table("coupon_sequence")
