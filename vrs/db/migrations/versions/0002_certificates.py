"""Certificates and the dose records (with versions) each was made from.

Revision ID: 0002_certificates
Revises: 0001_initial
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_certificates"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "certificate_dose_record",
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("dose_record_id", sa.Uuid(), nullable=False),
        sa.Column("uvci", sa.String(length=80), nullable=False),
        sa.Column("certificate_municipality_code", sa.String(length=6), nullable=False),
        sa.Column("dose_record_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_code", "dose_record_id", "uvci"),
    )
    with op.batch_alter_table("certificate_dose_record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_certificate_dose_uvci", ["certificate_municipality_code", "uvci"], unique=False
        )

    op.create_table(
        "certificate",
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("uvci", sa.String(length=80), nullable=False),
        sa.Column("resident_local_id", sa.String(length=20), nullable=False),
        sa.Column("holder_my_number_hmac", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("dose_number", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kid", sa.String(length=16), nullable=False),
        sa.Column("signature_hash", sa.String(length=32), nullable=False),
        sa.Column("uci_hash", sa.String(length=32), nullable=False),
        sa.Column("countrycode_uci_hash", sa.String(length=32), nullable=False),
        sa.Column("hc1", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("issued_by_credential_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=500), nullable=True),
        sa.Column("revoked_by_credential_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["municipality_code"],
            ["municipality.code"],
        ),
        sa.PrimaryKeyConstraint("municipality_code", "uvci"),
    )
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.create_index("ix_certificate_owner", ["holder_my_number_hmac"], unique=False)
        batch_op.create_index(
            "ix_certificate_resident", ["municipality_code", "resident_local_id"], unique=False
        )
        batch_op.create_index("ix_certificate_revoked", ["status", "revoked_at"], unique=False)
        batch_op.create_index("ix_certificate_uvci", ["uvci"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.drop_index("ix_certificate_uvci")
        batch_op.drop_index("ix_certificate_revoked")
        batch_op.drop_index("ix_certificate_resident")
        batch_op.drop_index("ix_certificate_owner")

    op.drop_table("certificate")
    with op.batch_alter_table("certificate_dose_record", schema=None) as batch_op:
        batch_op.drop_index("ix_certificate_dose_uvci")

    op.drop_table("certificate_dose_record")
