"""SQLModel tables of the record service.

Every table that grows with the population (residents, dose records and their events and
flags) carries ``municipality_code`` as the first column of its primary key, so it can be
partitioned or distributed by municipality. Value sets (products, rules, lots) and the
small operational tables (sites, devices, credentials) are reference tables.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint, event
from sqlmodel import Field, SQLModel

from vrs.db.types import UTCDateTime


def _ts(nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


class Municipality(SQLModel, table=True):
    __tablename__ = "municipality"

    code: str = Field(primary_key=True, max_length=6)
    name: str = Field(max_length=100)
    prefecture: str = Field(max_length=2)
    #: ``damm``: every coupon number carries a Damm check digit; ``legacy``: numbers from an
    #: earlier system without one may occur.
    coupon_format: str = Field(default="damm", max_length=10)
    created_at: datetime = _ts()


class Resident(SQLModel, table=True):
    __tablename__ = "resident"
    __table_args__ = (
        UniqueConstraint("municipality_code", "coupon_number", name="uq_resident_coupon"),
        Index("ix_resident_my_number_hmac", "my_number_hmac"),
    )

    municipality_code: str = Field(primary_key=True, max_length=6, foreign_key="municipality.code")
    local_id: str = Field(primary_key=True, max_length=20)
    family_name: str = Field(max_length=100)
    given_name: str = Field(max_length=100)
    family_name_kana: str = Field(max_length=100)
    given_name_kana: str = Field(max_length=100)
    birth_date: date
    sex: str = Field(max_length=1)
    #: HMAC-SHA-256 (hex) of the My Number under the service's key; the number is never stored.
    my_number_hmac: str | None = Field(default=None, max_length=64)
    coupon_number: str | None = Field(default=None, max_length=10)
    address: str = Field(default="", max_length=300)
    protected: bool = Field(default=False)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Site(SQLModel, table=True):
    __tablename__ = "site"

    #: 10-digit medical-institution code.
    code: str = Field(primary_key=True, max_length=10)
    name: str = Field(max_length=200)
    municipality_code: str | None = Field(default=None, max_length=6)
    active: bool = Field(default=True)
    created_at: datetime = _ts()


class Device(SQLModel, table=True):
    __tablename__ = "device"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    site_code: str = Field(max_length=10, foreign_key="site.code", index=True)
    name: str = Field(max_length=200)
    active: bool = Field(default=True)
    enrolled_at: datetime = _ts()


class Credential(SQLModel, table=True):
    __tablename__ = "credential"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    #: SHA-256 (hex) of the bearer token; the token itself is shown once and never stored.
    token_hash: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=20)
    name: str = Field(max_length=200)
    municipality_code: str | None = Field(default=None, max_length=6)
    site_code: str | None = Field(default=None, max_length=10)
    device_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)


class VaccineProduct(SQLModel, table=True):
    __tablename__ = "vaccine_product"

    #: The product code sites post: the EU medicinal-product id (``mp``).
    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=100)
    #: Marketing-authorisation holder (``ma``) and prophylaxis (``vp``) codes of the EU value sets.
    manufacturer_code: str = Field(max_length=40)
    prophylaxis_code: str = Field(max_length=40)
    #: Doses in the primary series (``sd`` of a certificate while ``dn`` is within it).
    series_length: int


class ProductIntervalRule(SQLModel, table=True):
    """Shortest allowed gap before dose N, as data with effective dates.

    A rule applies to dose numbers ``dose_from..dose_to`` (``dose_to`` null: no upper bound)
    of its product (null: any product) when the later dose's date falls within
    ``effective_from..effective_until`` and, if set, the person's age in months at that dose
    within ``age_min_months..age_max_months``. A product-specific rule beats a general one.
    """

    __tablename__ = "product_interval_rule"

    id: int | None = Field(default=None, primary_key=True)
    product_code: str | None = Field(
        default=None, max_length=40, foreign_key="vaccine_product.code"
    )
    dose_from: int
    dose_to: int | None = None
    min_days: int | None = None
    min_months: int | None = None
    age_min_months: int | None = None
    age_max_months: int | None = None
    effective_from: date
    effective_until: date | None = None
    note: str = Field(default="", max_length=300)


class ProductAgeRange(SQLModel, table=True):
    """Ages (in whole months at the dose) a product is approved for, with effective dates."""

    __tablename__ = "product_age_range"

    id: int | None = Field(default=None, primary_key=True)
    product_code: str = Field(max_length=40, foreign_key="vaccine_product.code")
    min_age_months: int
    max_age_months: int | None = None
    effective_from: date
    effective_until: date | None = None
    note: str = Field(default="", max_length=300)


class VaccineLot(SQLModel, table=True):
    __tablename__ = "vaccine_lot"

    lot_number: str = Field(primary_key=True, max_length=40)
    product_code: str = Field(primary_key=True, max_length=40, foreign_key="vaccine_product.code")
    expires_on: date
    gtin: str | None = Field(default=None, max_length=14)


class DoseRecord(SQLModel, table=True):
    __tablename__ = "dose_record"
    __table_args__ = (
        UniqueConstraint(
            "municipality_code", "coupon_number", "dose_number", name="uq_dose_natural_key"
        ),
        UniqueConstraint("municipality_code", "client_record_id", name="uq_dose_client_id"),
        Index("ix_dose_resident", "municipality_code", "resident_local_id"),
        Index("ix_dose_vaccinated_on", "municipality_code", "vaccinated_on"),
    )

    municipality_code: str = Field(primary_key=True, max_length=6, foreign_key="municipality.code")
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    coupon_number: str = Field(max_length=10)
    dose_number: int
    #: Null while no resident holds the coupon number yet (status ``pending``).
    resident_local_id: str | None = Field(default=None, max_length=20)
    vaccinated_on: date
    product_code: str = Field(max_length=40, foreign_key="vaccine_product.code")
    lot_number: str = Field(max_length=40)
    site_code: str = Field(max_length=10, foreign_key="site.code")
    device_id: uuid.UUID | None = None
    source: str = Field(max_length=10)
    client_record_id: uuid.UUID | None = None
    doctor_name: str | None = Field(default=None, max_length=100)
    #: ``pending`` (no resident yet), ``recorded`` or ``voided``.
    status: str = Field(max_length=10)
    #: Verified by the municipality: uploads can no longer change it.
    locked: bool = Field(default=False)
    version: int = Field(default=1)
    registered_by: uuid.UUID | None = None
    registered_at: datetime = _ts()
    updated_at: datetime = _ts()


class DoseRecordEvent(SQLModel, table=True):
    """Append-only history of a dose record."""

    __tablename__ = "dose_record_event"
    __table_args__ = (Index("ix_event_record", "municipality_code", "dose_record_id"),)

    municipality_code: str = Field(primary_key=True, max_length=6)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    dose_record_id: uuid.UUID
    #: created, matched, conflict, flagged, corrected, verified, voided, ...
    kind: str = Field(max_length=20)
    actor_credential_id: uuid.UUID | None = None
    at: datetime = _ts()
    reason: str | None = Field(default=None, max_length=500)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class QualityFlag(SQLModel, table=True):
    __tablename__ = "quality_flag"
    __table_args__ = (Index("ix_flag_record", "municipality_code", "dose_record_id"),)

    municipality_code: str = Field(primary_key=True, max_length=6)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    dose_record_id: uuid.UUID
    rule_code: str = Field(max_length=40)
    #: ``flag`` (to check) or ``conflict`` (an upload disagreed with the stored record).
    severity: str = Field(max_length=10)
    message: str = Field(max_length=500)
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = _ts()
    resolved_at: datetime | None = _ts(nullable=True)
    resolved_by: str | None = Field(default=None, max_length=60)
    resolution: str | None = Field(default=None, max_length=500)


class AuditLog(SQLModel, table=True):
    """Every read of personal data, My Number look-up and credential or key operation."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    at: datetime = _ts()
    actor_credential_id: uuid.UUID | None = None
    actor_role: str = Field(max_length=20)
    action: str = Field(max_length=60)
    municipality_code: str | None = Field(default=None, max_length=6)
    subject: str | None = Field(default=None, max_length=200)
    count: int = Field(default=0)
    purpose: str | None = Field(default=None, max_length=500)
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class Certificate(SQLModel, table=True):
    """A signed certificate (one DCC) issued for one dose of one resident.

    Keyed by the municipality of the certified dose (the one that issues it), so it is
    distributed with that municipality's records. The signature and UVCI hashes are kept so
    a revocation can be published without keeping or re-reading the signed document's key.
    """

    __tablename__ = "certificate"
    __table_args__ = (
        Index("ix_certificate_uvci", "uvci", unique=True),
        Index("ix_certificate_resident", "municipality_code", "resident_local_id"),
        Index("ix_certificate_owner", "holder_my_number_hmac"),
        Index("ix_certificate_revoked", "status", "revoked_at"),
    )

    municipality_code: str = Field(primary_key=True, max_length=6, foreign_key="municipality.code")
    #: ``URN:UVCI:01:JP:...`` (unique across municipalities).
    uvci: str = Field(primary_key=True, max_length=80)
    resident_local_id: str = Field(max_length=20)
    #: The keyed hash of the holder's My Number (null when none is on file): a resident signed
    #: in with a card owns every certificate carrying it, in whichever municipality.
    holder_my_number_hmac: str | None = Field(default=None, max_length=64)
    #: ``domestic`` or ``overseas`` (overseas carries the passport spelling of the name).
    kind: str = Field(max_length=10)
    #: The certified dose's cumulative number (``dn``).
    dose_number: int
    issued_at: datetime = _ts()
    expires_at: datetime = _ts()
    #: Key id of the document signer (hex of 8 bytes).
    kid: str = Field(max_length=16)
    #: Revocation hashes (hex of 16 bytes): of the signature (of ``r`` for ES256), the UVCI,
    #: and the country code + UVCI.
    signature_hash: str = Field(max_length=32)
    uci_hash: str = Field(max_length=32)
    countrycode_uci_hash: str = Field(max_length=32)
    #: The ``HC1:`` text itself, from which the QR images and the PDF are drawn again.
    hc1: str = Field(sa_column=Column(Text, nullable=False))
    #: ``self`` (the resident, signed in with a card) or ``window`` (municipality staff).
    channel: str = Field(max_length=10)
    issued_by_credential_id: uuid.UUID | None = None
    #: ``active`` or ``revoked``.
    status: str = Field(default="active", max_length=10)
    revoked_at: datetime | None = _ts(nullable=True)
    revoked_reason: str | None = Field(default=None, max_length=500)
    revoked_by_credential_id: uuid.UUID | None = None


class CertificateDoseRecord(SQLModel, table=True):
    """Which dose records, at which versions, a certificate was made from.

    Keyed by the dose record's municipality (a resident who moved has doses in several), so
    correcting or voiding a record finds the certificates to revoke on the record's own shard.
    """

    __tablename__ = "certificate_dose_record"
    __table_args__ = (Index("ix_certificate_dose_uvci", "certificate_municipality_code", "uvci"),)

    municipality_code: str = Field(primary_key=True, max_length=6)
    dose_record_id: uuid.UUID = Field(primary_key=True)
    uvci: str = Field(primary_key=True, max_length=80)
    certificate_municipality_code: str = Field(max_length=6)
    dose_record_version: int


class AuthChallenge(SQLModel, table=True):
    """A one-time challenge a resident's card signs to sign in (kept as a hash)."""

    __tablename__ = "auth_challenge"
    __table_args__ = (Index("ix_auth_challenge_expires", "expires_at"),)

    #: SHA-256 (hex) of the random challenge the client was given.
    challenge_hash: str = Field(primary_key=True, max_length=64)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(nullable=True)
    client_address: str = Field(default="", max_length=64)


class ResidentSession(SQLModel, table=True):
    """A short-lived resident sign-in (bearer token kept as a hash)."""

    __tablename__ = "resident_session"
    __table_args__ = (Index("ix_resident_session_expires", "expires_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    #: The signed-in person: the keyed hash of the card's My Number, and the birth date on it.
    my_number_hmac: str = Field(max_length=64)
    birth_date: date
    #: SHA-256 (hex) of the card's public key: which card signed in.
    card_key: str = Field(max_length=64)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    client_address: str = Field(default="", max_length=64)


class AuthFailure(SQLModel, table=True):
    """A failed sign-in, counted against a card and a client address for rate limiting."""

    __tablename__ = "auth_failure"
    __table_args__ = (Index("ix_auth_failure_subject", "subject", "at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    #: ``card:<sha-256 of the card key>`` or ``addr:<client address>``.
    subject: str = Field(max_length=80)
    at: datetime = _ts()
    code: str = Field(max_length=40)


class CouponSequence(SQLModel, table=True):
    """The next coupon serial of a municipality: serials only grow, so no number is issued
    twice, even after the resident who held it has gone."""

    __tablename__ = "coupon_sequence"

    municipality_code: str = Field(primary_key=True, max_length=6, foreign_key="municipality.code")
    next_serial: int = Field(default=1)
    issued: int = Field(default=0)
    updated_at: datetime = _ts()


class ResidentLink(SQLModel, table=True):
    """A resident who moved in, linked by a history look-up to their record elsewhere: the
    doses of ``source`` count for the rules of this municipality's records of the resident."""

    __tablename__ = "resident_link"
    __table_args__ = (
        Index("ix_resident_link_source", "source_municipality_code", "source_local_id"),
    )

    municipality_code: str = Field(primary_key=True, max_length=6)
    resident_local_id: str = Field(primary_key=True, max_length=20)
    source_municipality_code: str = Field(primary_key=True, max_length=6)
    source_local_id: str = Field(primary_key=True, max_length=20)
    linked_at: datetime = _ts()
    linked_by: uuid.UUID | None = None


class DoseStats(SQLModel, table=True):
    """Signed dose counts per key, appended by triggers on ``dose_record``
    (:mod:`vrs.db.stats`); a key's count is the sum of its rows."""

    __tablename__ = "dose_stats"
    __table_args__ = (Index("ix_dose_stats_date", "vaccinated_on"),)

    municipality_code: str = Field(primary_key=True, max_length=6)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    vaccinated_on: date
    product_code: str = Field(max_length=40)
    dose_number: int
    age_band: str = Field(max_length=10)
    doses: int


def _install_stats_triggers(_target: Any, connection: Any, **kw: Any) -> None:
    """Tables built from the models (tests, benchmarks) get the triggers the migration makes."""
    names = {t.name for t in kw.get("tables") or ()}
    if {"dose_record", "dose_stats"} <= names:
        from vrs.db.stats import trigger_ddl

        for statement in trigger_ddl(connection.dialect.name):
            connection.exec_driver_sql(statement)


event.listen(SQLModel.metadata, "after_create", _install_stats_triggers)


class TrustPublication(SQLModel, table=True):
    """A published trust bundle: every worker serves the same bytes (and ETag) until the
    keys or the revocations change or it nears its ``valid_until``."""

    __tablename__ = "trust_publication"

    sequence: int = Field(primary_key=True)
    issued_at: datetime = _ts()
    valid_until: datetime = _ts()
    #: What it was built from (listed DSCs, revocation count and latest time, rules version).
    state: str = Field(max_length=200)
    etag: str = Field(max_length=70)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


ALL_TABLES = [
    SQLModel.metadata.tables[name]
    for name in (
        "municipality",
        "resident",
        "site",
        "device",
        "credential",
        "vaccine_product",
        "product_interval_rule",
        "product_age_range",
        "vaccine_lot",
        "dose_record",
        "dose_record_event",
        "quality_flag",
        "audit_log",
        "certificate",
        "certificate_dose_record",
        "auth_challenge",
        "resident_session",
        "auth_failure",
        "coupon_sequence",
        "resident_link",
        "dose_stats",
        "trust_publication",
    )
]
