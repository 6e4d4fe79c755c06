"""What a signed-in resident sees of themselves: names, doses and certificates.

The resident is found by the keyed hash of the card's My Number and the birth date (a person
who moved has a resident row in each municipality; all of them are shown). Every read is
audit-logged as a personal-data read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlmodel import Session, col

from certs.errors import CertsError
from certs.names import hepburn_from_kana
from vrs.db.models import Certificate, DoseRecord, QualityFlag, Resident, VaccineProduct
from vrs.domain import audit
from vrs.domain.auth import Principal, Role, require_role
from vrs.domain.errors import Forbidden, NotFound


@dataclass(frozen=True)
class OwnDose:
    dose_number: int
    vaccinated_on: date
    product: str
    product_name: str
    lot: str
    municipality_code: str
    status: str
    open_flags: int


@dataclass(frozen=True)
class OwnCertificate:
    uvci: str
    kind: str
    dose_number: int
    issued_at: datetime
    expires_at: datetime
    status: str


@dataclass(frozen=True)
class OwnRecords:
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: date
    #: Passport-Hepburn suggestion from the kana (empty when the kana cannot be romanised).
    suggested_family: str
    suggested_given: str
    protected: bool
    doses: list[OwnDose]
    certificates: list[OwnCertificate]


def _suggest(kana: str) -> str:
    try:
        return hepburn_from_kana(kana)
    except CertsError:
        return ""


def load_person(session: Session, key: str, birth_date: Any) -> list[Resident]:
    """The person's resident rows in every municipality (keyed My Number hash + birth date)."""
    return list(
        session.execute(
            select(Resident)
            .where(col(Resident.my_number_hmac) == key, col(Resident.birth_date) == birth_date)
            .order_by(col(Resident.municipality_code))
        ).scalars()
    )


def load_records(session: Session, rows: Sequence[Resident]) -> list[DoseRecord]:
    """The person's non-voided dose records: matched to a resident row, or still pending on
    one of their coupons."""
    owners = or_(
        *(
            and_(
                col(DoseRecord.municipality_code) == r.municipality_code,
                col(DoseRecord.resident_local_id) == r.local_id,
            )
            for r in rows
        )
    )
    coupons = [
        and_(
            col(DoseRecord.municipality_code) == r.municipality_code,
            col(DoseRecord.coupon_number) == r.coupon_number,
        )
        for r in rows
        if r.coupon_number
    ]
    where = or_(owners, *coupons) if coupons else owners
    statement = select(DoseRecord).where(where, col(DoseRecord.status) != "voided")
    return list(session.execute(statement).scalars())


def own_records(session: Session, *, actor: Principal, now: datetime) -> OwnRecords:
    """The signed-in resident's names, doses (all municipalities) and certificates; commits
    the audit entry."""
    require_role(actor, Role.RESIDENT)
    if actor.resident_key is None:
        raise Forbidden("ROLE_NOT_ALLOWED", "this needs a resident session")
    rows = load_person(session, actor.resident_key, actor.resident_birth_date)
    if not rows:
        raise NotFound("RESIDENT_NOT_FOUND", "no resident is registered for this sign-in")
    records = sorted(load_records(session, rows), key=lambda r: (r.dose_number, r.vaccinated_on))
    names: dict[str, str] = {
        code: name
        for code, name in session.execute(
            select(col(VaccineProduct.code), col(VaccineProduct.name))
        ).all()
    }
    flagged = _open_flag_counts(session, records)
    certificates = session.execute(
        select(Certificate)
        .where(col(Certificate.holder_my_number_hmac) == actor.resident_key)
        .order_by(col(Certificate.issued_at).desc())
    ).scalars()
    first = rows[0]
    for row in rows:
        audit.record(
            session,
            actor,
            "resident.self_read",
            now=now,
            municipality_code=row.municipality_code,
            subject=row.local_id,
            count=1,
            purpose="own records",
        )
    result = OwnRecords(
        family_name=first.family_name,
        given_name=first.given_name,
        family_name_kana=first.family_name_kana,
        given_name_kana=first.given_name_kana,
        birth_date=first.birth_date,
        suggested_family=_suggest(first.family_name_kana),
        suggested_given=_suggest(first.given_name_kana),
        protected=any(row.protected for row in rows),
        doses=[
            OwnDose(
                dose_number=r.dose_number,
                vaccinated_on=r.vaccinated_on,
                product=r.product_code,
                product_name=names.get(r.product_code, r.product_code),
                lot=r.lot_number,
                municipality_code=r.municipality_code,
                status=r.status,
                open_flags=flagged.get(r.id, 0),
            )
            for r in records
        ],
        certificates=[
            OwnCertificate(
                uvci=c.uvci,
                kind=c.kind,
                dose_number=c.dose_number,
                issued_at=c.issued_at,
                expires_at=c.expires_at,
                status=c.status,
            )
            for c in certificates
        ],
    )
    session.commit()
    return result


def _open_flag_counts(session: Session, records: list[DoseRecord]) -> dict[object, int]:
    if not records:
        return {}
    counts: dict[object, int] = {}
    flags = session.execute(
        select(col(QualityFlag.dose_record_id)).where(
            col(QualityFlag.dose_record_id).in_([r.id for r in records]),
            col(QualityFlag.resolved_at).is_(None),
        )
    ).scalars()
    for record_id in flags:
        counts[record_id] = counts.get(record_id, 0) + 1
    return counts


__all__ = ["OwnCertificate", "OwnDose", "OwnRecords", "own_records"]
