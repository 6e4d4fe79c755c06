"""The statistics triggers look each record's resident up on its primary key.

The triggers of 0004 (their functions redefined by 0006) joined the transition table to
``resident``; planned without statistics for the transition table, PostgreSQL hashed the
whole resident table for every write statement. The functions and triggers are made again
from :mod:`vrs.db.stats`.

Revision ID: 0007_stats_trigger_lookup
Revises: 0006_stats_age_once
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from vrs.db.stats import drop_trigger_ddl, trigger_ddl

revision: str = "0007_stats_trigger_lookup"
down_revision: str | None = "0006_stats_age_once"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _remake() -> None:
    dialect = op.get_bind().dialect.name
    for statement in drop_trigger_ddl(dialect) + trigger_ddl(dialect):
        op.execute(statement)


def upgrade() -> None:
    _remake()


def downgrade() -> None:
    # The earlier triggers counted exactly the same rows; only their plan differed.
    _remake()
