"""Resident sign-in with a card: one-time challenges, sessions and failed attempts.

Revision ID: 0003_resident_auth
Revises: 0002_certificates
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_resident_auth"
down_revision: str | None = "0002_certificates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_challenge",
        sa.Column("challenge_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("challenge_hash"),
    )
    with op.batch_alter_table("auth_challenge", schema=None) as batch_op:
        batch_op.create_index("ix_auth_challenge_expires", ["expires_at"], unique=False)

    op.create_table(
        "auth_failure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("auth_failure", schema=None) as batch_op:
        batch_op.create_index("ix_auth_failure_subject", ["subject", "at"], unique=False)

    op.create_table(
        "resident_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("my_number_hmac", sa.String(length=64), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("card_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("resident_session", schema=None) as batch_op:
        batch_op.create_index("ix_resident_session_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("resident_session", schema=None) as batch_op:
        batch_op.drop_index("ix_resident_session_expires")

    op.drop_table("resident_session")
    with op.batch_alter_table("auth_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_failure_subject")

    op.drop_table("auth_failure")
    with op.batch_alter_table("auth_challenge", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_challenge_expires")

    op.drop_table("auth_challenge")
