"""Initial schema: places, residents, credentials, value sets, dose records and the audit log.

Generated from the models with autogenerate, then tidied (plain SQLAlchemy types, indexes
created outside batch blocks, which works on SQLite and PostgreSQL alike).

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_credential_id", sa.Uuid(), nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_at", "audit_log", ["at"])
    op.create_table(
        "credential",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=True),
        sa.Column("site_code", sa.String(length=10), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "dose_record_event",
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dose_record_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("actor_credential_id", sa.Uuid(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("municipality_code", "id"),
    )
    op.create_index("ix_event_record", "dose_record_event", ["municipality_code", "dose_record_id"])
    op.create_table(
        "municipality",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefecture", sa.String(length=2), nullable=False),
        sa.Column("coupon_format", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "quality_flag",
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dose_record_id", sa.Uuid(), nullable=False),
        sa.Column("rule_code", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=60), nullable=True),
        sa.Column("resolution", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("municipality_code", "id"),
    )
    op.create_index("ix_flag_record", "quality_flag", ["municipality_code", "dose_record_id"])
    op.create_table(
        "site",
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("municipality_code", sa.String(length=6), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "vaccine_product",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("manufacturer_code", sa.String(length=40), nullable=False),
        sa.Column("prophylaxis_code", sa.String(length=40), nullable=False),
        sa.Column("series_length", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "device",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("site_code", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_code"],
            ["site.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_device_site_code"), "device", ["site_code"])
    op.create_table(
        "dose_record",
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("coupon_number", sa.String(length=10), nullable=False),
        sa.Column("dose_number", sa.Integer(), nullable=False),
        sa.Column("resident_local_id", sa.String(length=20), nullable=True),
        sa.Column("vaccinated_on", sa.Date(), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("lot_number", sa.String(length=40), nullable=False),
        sa.Column("site_code", sa.String(length=10), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("client_record_id", sa.Uuid(), nullable=True),
        sa.Column("doctor_name", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("registered_by", sa.Uuid(), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality_code"],
            ["municipality.code"],
        ),
        sa.ForeignKeyConstraint(
            ["product_code"],
            ["vaccine_product.code"],
        ),
        sa.ForeignKeyConstraint(
            ["site_code"],
            ["site.code"],
        ),
        sa.PrimaryKeyConstraint("municipality_code", "id"),
        sa.UniqueConstraint("municipality_code", "client_record_id", name="uq_dose_client_id"),
        sa.UniqueConstraint(
            "municipality_code", "coupon_number", "dose_number", name="uq_dose_natural_key"
        ),
    )
    op.create_index("ix_dose_resident", "dose_record", ["municipality_code", "resident_local_id"])
    op.create_index("ix_dose_vaccinated_on", "dose_record", ["municipality_code", "vaccinated_on"])
    op.create_table(
        "product_age_range",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("min_age_months", sa.Integer(), nullable=False),
        sa.Column("max_age_months", sa.Integer(), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_until", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_code"],
            ["vaccine_product.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "product_interval_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=True),
        sa.Column("dose_from", sa.Integer(), nullable=False),
        sa.Column("dose_to", sa.Integer(), nullable=True),
        sa.Column("min_days", sa.Integer(), nullable=True),
        sa.Column("min_months", sa.Integer(), nullable=True),
        sa.Column("age_min_months", sa.Integer(), nullable=True),
        sa.Column("age_max_months", sa.Integer(), nullable=True),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_until", sa.Date(), nullable=True),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_code"],
            ["vaccine_product.code"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "resident",
        sa.Column("municipality_code", sa.String(length=6), nullable=False),
        sa.Column("local_id", sa.String(length=20), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("family_name_kana", sa.String(length=100), nullable=False),
        sa.Column("given_name_kana", sa.String(length=100), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("my_number_hmac", sa.String(length=64), nullable=True),
        sa.Column("coupon_number", sa.String(length=10), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["municipality_code"],
            ["municipality.code"],
        ),
        sa.PrimaryKeyConstraint("municipality_code", "local_id"),
        sa.UniqueConstraint("municipality_code", "coupon_number", name="uq_resident_coupon"),
    )
    op.create_index("ix_resident_my_number_hmac", "resident", ["my_number_hmac"])
    op.create_table(
        "vaccine_lot",
        sa.Column("lot_number", sa.String(length=40), nullable=False),
        sa.Column("product_code", sa.String(length=40), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_code"],
            ["vaccine_product.code"],
        ),
        sa.PrimaryKeyConstraint("lot_number", "product_code"),
    )


def downgrade() -> None:
    op.drop_table("vaccine_lot")
    op.drop_index("ix_resident_my_number_hmac", table_name="resident")
    op.drop_table("resident")
    op.drop_table("product_interval_rule")
    op.drop_table("product_age_range")
    op.drop_index("ix_dose_vaccinated_on", table_name="dose_record")
    op.drop_index("ix_dose_resident", table_name="dose_record")
    op.drop_table("dose_record")
    op.drop_index(op.f("ix_device_site_code"), table_name="device")
    op.drop_table("device")
    op.drop_table("vaccine_product")
    op.drop_table("site")
    op.drop_index("ix_flag_record", table_name="quality_flag")
    op.drop_table("quality_flag")
    op.drop_table("municipality")
    op.drop_index("ix_event_record", table_name="dose_record_event")
    op.drop_table("dose_record_event")
    op.drop_table("credential")
    op.drop_index("ix_audit_at", table_name="audit_log")
    op.drop_table("audit_log")
