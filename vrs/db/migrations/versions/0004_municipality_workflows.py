"""Municipality workflows: coupon serial sequences; links of residents who moved; the dose
statistics summary and the triggers on ``dose_record`` that keep it.

Revision ID: 0004_municipality_workflows
Revises: 0003_resident_auth
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vrs.db.stats import drop_trigger_ddl, trigger_ddl

revision: str = "0004_municipality_workflows"
down_revision: str | None = "0003_resident_auth"
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

    op.create_table(
        "dose_stats",
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("vaccinated_on", sa.Date(), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("dose_number", sa.Integer(), nullable=False),
        sa.Column("age_band", sa.String(length=10), nullable=False),
        sa.Column("doses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_code", "id"),
    )
    op.create_index("ix_dose_stats_date", "dose_stats", ["vaccinated_on"])
    dialect = op.get_bind().dialect.name
    for statement in trigger_ddl(dialect):
        op.execute(statement)
    op.execute(_rebuild_sql(dialect))


def _rebuild_sql(dialect: str) -> str:
    """Count the records already stored (a database upgraded with data in it)."""
    from vrs.db.stats import rebuild_sql

    return rebuild_sql(dialect)


def downgrade() -> None:
    for statement in drop_trigger_ddl(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_index("ix_dose_stats_date", table_name="dose_stats")
    op.drop_table("dose_stats")
    op.drop_index("ix_resident_link_source", table_name="resident_link")
    op.drop_table("resident_link")
    op.drop_table("coupon_sequence")
