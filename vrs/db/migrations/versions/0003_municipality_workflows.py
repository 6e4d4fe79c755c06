"""Municipality workflows: coupon serial sequences; links of residents who moved.

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
    op.create_table(
        "resident_link",
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("resident_local_id", sa.String(length=20), nullable=False),
        sa.Column("source_municipality_code", sa.String(length=6), nullable=False),
        sa.Column("source_local_id", sa.String(length=20), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_by", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint(
            "municipality_code", "resident_local_id", "source_municipality_code", "source_local_id"
        ),
    )
    op.create_index(
        "ix_resident_link_source", "resident_link", ["source_municipality_code", "source_local_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_resident_link_source", table_name="resident_link")
    op.drop_table("resident_link")
    op.drop_table("coupon_sequence")
