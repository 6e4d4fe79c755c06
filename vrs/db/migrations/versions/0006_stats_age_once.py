"""The statistics triggers' functions compute a record's age once (PostgreSQL).

The summary rows are the same; the functions of revision 0004 computed the age in years
once for every age band they tested, most of the cost of a large insert's trigger.

Revision ID: 0006_stats_age_once
Revises: 0005_trust_publication
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from vrs.db.stats import function_ddl

revision: str = "0006_stats_age_once"
down_revision: str | None = "0005_trust_publication"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in function_ddl():
            op.execute(statement)


def downgrade() -> None:
    """Nothing to undo: the functions give the same rows as those of revision 0004."""
