"""Issuing certificates: to a signed-in resident, or at the municipality window.

One certificate certifies one dose (``dn``; default the latest). It is refused, with a code
naming the cause, when the person's records are not settled:

- ``RECORDS_FLAGGED`` — a record has an open quality flag (to check);
- ``RECORDS_CONFLICTING`` — an upload disagreed with a stored record (open conflict), or two
  records claim the same dose number;
- ``RECORDS_PENDING`` — a dose on the person's coupon is not matched to them yet;
- ``NO_DOSES`` / ``DOSE_NOT_FOUND`` — nothing (or not that dose) is recorded;
- ``PROTECTED_RESIDENT`` — self-service for a protected resident (the window issues instead);
- ``DOSE_OF_OTHER_MUNICIPALITY`` — the window issues only for doses its municipality recorded.

A person who moved has a resident row in each municipality, linked by the keyed hash of the
My Number; their doses count across all of them (``dn`` is cumulative).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlmodel import Session, col

import certs
from certs import wire
from certs.uvci import OPAQUE_ALPHABET
from keys import Signer
from vrs.db.models import (
    Certificate,
    CertificateDoseRecord,
    DoseRecord,
    QualityFlag,
    Resident,
    VaccineProduct,
)
from vrs.domain import audit
from vrs.domain.auth import Principal, Role, require_municipality, require_role
from vrs.domain.certificates import STATUS_ACTIVE
from vrs.domain.errors import Conflict, Forbidden, NotFound, Unprocessable

KINDS = ("domestic", "overseas")
CHANNEL_SELF = "self"
CHANNEL_WINDOW = "window"
#: Random characters after the municipality code in a UVCI's opaque part (80 bits).
_UVCI_RANDOM = 16
#: What a UVCI may contain (anything else cannot name a certificate and is never queried).
_UVCI_TEXT = re.compile(r"[A-Z0-9:/#]{1,80}")


@dataclass(frozen=True)
class PassportName:
    family: str
    given: str


@dataclass(frozen=True)
class CertificateRequest:
    kind: str
    dose: int | None = None
    passport_name: PassportName | None = None


@dataclass(frozen=True)
class IssuedView:
    uvci: str
    hc1: str
    kind: str
    dose_number: int
    municipality_code: str
    issued_at: datetime
    expires_at: datetime
    kid: str


def _check_request(request: CertificateRequest) -> None:
    if request.kind not in KINDS:
        raise Unprocessable("BAD_KIND", "kind is domestic or overseas")
    if request.dose is not None and not 1 <= request.dose <= 9:
        raise Unprocessable("BAD_DOSE", "dose is a dose number 1..9")
    if request.kind == "overseas" and request.passport_name is None:
        raise Unprocessable(
            "PASSPORT_NAME_REQUIRED",
            "an overseas certificate needs the name as spelt in the passport",
        )


def _person(session: Session, key: str, birth_date: Any) -> list[Resident]:
    return list(
        session.execute(
            select(Resident).where(
                col(Resident.my_number_hmac) == key, col(Resident.birth_date) == birth_date
            )
        ).scalars()
    )


def issue_for_resident(
    session: Session,
    *,
    actor: Principal,
    request: CertificateRequest,
    signer: Signer,
    now: datetime,
) -> IssuedView:
    """A certificate for the signed-in resident; commits."""
    require_role(actor, Role.RESIDENT)
    _check_request(request)
    if actor.resident_key is None:
        raise Forbidden("ROLE_NOT_ALLOWED", "this needs a resident session")
    rows = _person(session, actor.resident_key, actor.resident_birth_date)
    if not rows:
        raise NotFound("RESIDENT_NOT_FOUND", "no resident is registered for this sign-in")
    if any(row.protected for row in rows):
        raise Forbidden(
            "PROTECTED_RESIDENT",
            "certificates for this resident are issued at the municipality window",
        )
    return _issue(session, actor, rows, request, signer, now, CHANNEL_SELF, window=None)


def issue_at_window(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    local_id: str,
    request: CertificateRequest,
    signer: Signer,
    now: datetime,
) -> IssuedView:
    """A certificate issued by municipality staff for one of its residents; commits."""
    require_role(actor, Role.ADMIN, Role.MUNICIPALITY)
    require_municipality(actor, municipality_code)
    _check_request(request)
    resident = session.get(Resident, (municipality_code, local_id))
    if resident is None:
        raise NotFound("UNKNOWN_RESIDENT", f"no resident {local_id} in {municipality_code}")
    rows = [resident]
    if resident.my_number_hmac is not None:
        rows += [
            r
            for r in _person(session, resident.my_number_hmac, resident.birth_date)
            if (r.municipality_code, r.local_id) != (municipality_code, local_id)
        ]
    return _issue(
        session, actor, rows, request, signer, now, CHANNEL_WINDOW, window=municipality_code
    )


def _load_records(session: Session, rows: Sequence[Resident]) -> list[DoseRecord]:
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
    return list(
        session.execute(
            select(DoseRecord).where(where, col(DoseRecord.status) != "voided")
        ).scalars()
    )


def _open_flags(session: Session, records: Sequence[DoseRecord]) -> list[QualityFlag]:
    if not records:
        return []
    by_municipality: dict[str, list[Any]] = {}
    for record in records:
        by_municipality.setdefault(record.municipality_code, []).append(record.id)
    return list(
        session.execute(
            select(QualityFlag).where(
                or_(
                    *(
                        and_(
                            col(QualityFlag.municipality_code) == code,
                            col(QualityFlag.dose_record_id).in_(ids),
                        )
                        for code, ids in by_municipality.items()
                    )
                ),
                col(QualityFlag.resolved_at).is_(None),
            )
        ).scalars()
    )


def _settled_series(
    session: Session, rows: Sequence[Resident], request: CertificateRequest, window: str | None
) -> tuple[DoseRecord, list[DoseRecord]]:
    """The certified dose and the records it is made from, or the refusal naming the cause."""
    records = _load_records(session, rows)
    pending = sorted(r.dose_number for r in records if r.status == "pending")
    if pending:
        raise Conflict(
            "RECORDS_PENDING",
            "some doses on the coupon are not matched to the resident yet",
            doses=pending,
        )
    if not records:
        raise Conflict("NO_DOSES", "no dose is recorded for this resident")
    flags = _open_flags(session, records)
    conflicts = sorted({f.rule_code for f in flags if f.severity == "conflict"})
    numbers = [r.dose_number for r in records]
    duplicated = sorted({n for n in numbers if numbers.count(n) > 1})
    if conflicts or duplicated:
        raise Conflict(
            "RECORDS_CONFLICTING",
            "the resident's records disagree; the municipality must settle them first",
            rules=conflicts,
            doses=duplicated,
        )
    if flags:
        raise Conflict(
            "RECORDS_FLAGGED",
            "the resident's records have open flags to check first",
            rules=sorted({f.rule_code for f in flags}),
        )
    candidates = [r for r in records if window is None or r.municipality_code == window]
    if request.dose is None:
        if not candidates:
            raise Forbidden("DOSE_OF_OTHER_MUNICIPALITY", "no dose of this municipality to certify")
        dose = max(candidates, key=lambda r: r.dose_number)
    else:
        found = [r for r in records if r.dose_number == request.dose]
        if not found:
            raise NotFound("DOSE_NOT_FOUND", f"no dose {request.dose} is recorded")
        dose = found[0]
        if window is not None and dose.municipality_code != window:
            raise Forbidden(
                "DOSE_OF_OTHER_MUNICIPALITY",
                "the window issues certificates for doses its municipality recorded",
            )
    used = [r for r in records if r.dose_number <= dose.dose_number]
    return dose, used


def _holder_name(resident: Resident, request: CertificateRequest) -> certs.HolderName:
    try:
        if request.passport_name is not None:
            return certs.HolderName.from_passport(
                resident.family_name,
                resident.given_name,
                passport_family=request.passport_name.family,
                passport_given=request.passport_name.given,
            )
        return certs.HolderName.suggest_from_kana(
            resident.family_name,
            resident.given_name,
            family_kana=resident.family_name_kana,
            given_kana=resident.given_name_kana,
        )
    except certs.CertsError as exc:
        raise Unprocessable(exc.code, str(exc)) from None


def _issue(
    session: Session,
    actor: Principal,
    rows: Sequence[Resident],
    request: CertificateRequest,
    signer: Signer,
    now: datetime,
    channel: str,
    *,
    window: str | None,
) -> IssuedView:
    dose, used = _settled_series(session, rows, request, window)
    owner = next(
        r
        for r in rows
        if r.municipality_code == dose.municipality_code
        and (r.local_id == dose.resident_local_id or r.coupon_number == dose.coupon_number)
    )
    product = session.get(VaccineProduct, dose.product_code)
    if product is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound("UNKNOWN_PRODUCT", dose.product_code)
    name = _holder_name(owner, request)
    opaque = dose.municipality_code + "".join(
        secrets.choice(OPAQUE_ALPHABET) for _ in range(_UVCI_RANDOM)
    )
    try:
        vaccination = certs.Vaccination(
            product=product.code,
            manufacturer=product.manufacturer_code,
            prophylaxis=product.prophylaxis_code,
            dose_number=dose.dose_number,
            series_length=product.series_length,
            date=dose.vaccinated_on,
        )
        issued = certs.issue(
            name,
            owner.birth_date,
            vaccination,
            signer=signer,
            now=now,
            uvci=certs.new_uvci(opaque=opaque),
        )
    except certs.PayloadError as exc:
        raise Unprocessable(exc.code, str(exc)) from None
    certificate = Certificate(
        municipality_code=dose.municipality_code,
        uvci=issued.uvci,
        resident_local_id=owner.local_id,
        holder_my_number_hmac=owner.my_number_hmac,
        kind=request.kind,
        dose_number=dose.dose_number,
        issued_at=issued.issued_at,
        expires_at=issued.expires_at,
        kid=issued.kid.hex(),
        signature_hash=issued.signature_hash.hex(),
        uci_hash=issued.uci_hash.hex(),
        countrycode_uci_hash=issued.countrycode_uci_hash.hex(),
        hc1=issued.hc1,
        channel=channel,
        issued_by_credential_id=actor.credential_id,
        status=STATUS_ACTIVE,
    )
    session.add(certificate)
    session.flush()  # the certificate before the rows that point at it
    for record in used:
        session.add(
            CertificateDoseRecord(
                municipality_code=record.municipality_code,
                dose_record_id=record.id,
                uvci=issued.uvci,
                certificate_municipality_code=dose.municipality_code,
                dose_record_version=record.version,
            )
        )
    audit.record(
        session,
        actor,
        "certificate.issue",
        now=now,
        municipality_code=dose.municipality_code,
        subject=issued.uvci,
        count=1,
        details={"channel": channel, "kind": request.kind, "dose": dose.dose_number},
    )
    session.commit()
    return IssuedView(
        uvci=issued.uvci,
        hc1=issued.hc1,
        kind=request.kind,
        dose_number=dose.dose_number,
        municipality_code=dose.municipality_code,
        issued_at=issued.issued_at,
        expires_at=issued.expires_at,
        kid=issued.kid.hex(),
    )


def certificate_for(
    session: Session, *, actor: Principal, uvci: str, purpose: str, now: datetime
) -> Certificate:
    """A certificate its owner or owning municipality may see; audit-logged, commits."""
    require_role(actor, Role.RESIDENT, Role.MUNICIPALITY)
    if not _UVCI_TEXT.fullmatch(uvci):
        raise NotFound("CERTIFICATE_NOT_FOUND", "no such certificate")
    row: Certificate | None = session.execute(
        select(Certificate).where(col(Certificate.uvci) == uvci)
    ).scalar_one_or_none()
    if actor.role is Role.RESIDENT:
        if row is None or row.holder_my_number_hmac != actor.resident_key:
            raise NotFound("CERTIFICATE_NOT_FOUND", "no such certificate of yours")
    elif row is None:
        raise NotFound("CERTIFICATE_NOT_FOUND", "no such certificate")
    else:
        require_municipality(actor, row.municipality_code)
    if row.status != STATUS_ACTIVE:
        raise Conflict(
            "CERTIFICATE_REVOKED",
            "the certificate was revoked (a record it was made from changed); issue a new one",
        )
    audit.record(
        session,
        actor,
        "certificate.read",
        now=now,
        municipality_code=row.municipality_code,
        subject=row.uvci,
        count=1,
        purpose=purpose,
    )
    session.commit()
    return row


def signed_payload(hc1: str) -> dict[str, Any]:
    """The ``hcert`` JSON object inside one of our own ``HC1:`` texts."""
    sign1 = wire.parse_sign1(wire.zlib_decompress(wire.b45decode(wire.hc1_strip(hc1))))
    claims = wire.cbor_loads(sign1.payload)
    payload: dict[str, Any] = claims[wire.CWT_HCERT][wire.HCERT_EU_DCC]
    return payload


#: The person's resident rows (by keyed My Number hash and birth date) and their records,
#: for other read-only views of the same person (``vrs.domain.own_records``).
load_person = _person
load_records = _load_records
