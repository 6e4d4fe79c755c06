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

import base64
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import aliased
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
#: base32 of random bytes, its 32 letters mapped one to one onto the UVCI alphabet: one
#: ``urandom`` call instead of sixteen ``secrets.choice`` calls, the same uniform choice.
_FROM_BASE32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", OPAQUE_ALPHABET.encode())
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


@dataclass(frozen=True)
class _ResidentRow:
    municipality_code: str
    local_id: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: date
    my_number_hmac: str | None
    coupon_number: str | None
    protected: bool


@dataclass(frozen=True)
class _DoseRow:
    municipality_code: str
    id: uuid.UUID
    dose_number: int
    resident_local_id: str | None
    coupon_number: str
    vaccinated_on: date
    status: str
    version: int


@dataclass(frozen=True)
class _ProductRow:
    code: str
    manufacturer_code: str
    prophylaxis_code: str
    series_length: int


def _columns(model: Any, row: Any) -> list[Any]:
    return [col(getattr(model, field.name)) for field in fields(row)]


@dataclass(frozen=True)
class _Dose:
    record: _DoseRow
    product: _ProductRow
    #: Whether the record has an open flag of severity ``conflict`` / ``flag``.
    conflict: bool
    flagged: bool


def _open_flag(record_id: Any, municipality: Any, severity: str) -> Any:
    return (
        select(col(QualityFlag.id))
        .where(
            col(QualityFlag.municipality_code) == municipality,
            col(QualityFlag.dose_record_id) == record_id,
            col(QualityFlag.resolved_at).is_(None),
            col(QualityFlag.severity) == severity,
        )
        .exists()
    )


def _pending_on_coupon() -> Any:
    other = aliased(DoseRecord)  # not the joined dose: a record on the resident's coupon
    return (
        select(col(other.id))
        .where(
            col(other.municipality_code) == col(Resident.municipality_code),
            col(other.coupon_number) == col(Resident.coupon_number),
            col(other.status) == "pending",
        )
        .correlate(Resident)
        .exists()
    )


@dataclass(frozen=True)
class _Person:
    rows: list[_ResidentRow]
    doses: list[_Dose]
    #: Doses on one of the person's coupons not matched to them yet.
    pending: bool


def _person_select() -> Any:
    """The person's resident rows and their non-voided doses (with product and open-flag
    state) in one statement: every issue pays one round trip for all it has to read. Each
    join and sub-query follows an index (the resident's doses, the coupon's natural key, the
    record's flags)."""
    record = DoseRecord
    joined = and_(
        col(record.municipality_code) == col(Resident.municipality_code),
        col(record.resident_local_id) == col(Resident.local_id),
        col(record.status) != "voided",
    )
    return (
        select(
            *_columns(Resident, _ResidentRow),
            *_columns(record, _DoseRow),
            *_columns(VaccineProduct, _ProductRow),
            _open_flag(col(record.id), col(record.municipality_code), "conflict"),
            _open_flag(col(record.id), col(record.municipality_code), "flag"),
            _pending_on_coupon(),
        )
        .outerjoin(record, joined)
        .outerjoin(VaccineProduct, col(VaccineProduct.code) == col(record.product_code))
    )


@cache
def _signed_in_person() -> Any:
    """:func:`_person_select` for a signed-in resident, built once (its parameters bound per
    call): building the statement costs more Python time than running it."""
    return _person_select().where(_same_person(bindparam("key"), bindparam("birth")))


def _load_person(session: Session, statement: Any, **params: Any) -> _Person:
    """Plain rows, not ORM objects: nothing read here is changed, and building entities
    costs more than the query."""
    return _person_from_rows(session.execute(statement, params).all())


def _person_from_rows(result: Sequence[Sequence[Any]]) -> _Person:
    """The person from the rows of :func:`_person_select` (either path reads them)."""
    r_end = len(fields(_ResidentRow))
    d_end = r_end + len(fields(_DoseRow))
    p_end = d_end + len(fields(_ProductRow))
    residents: dict[tuple[str, str], _ResidentRow] = {}
    doses: dict[Any, _Dose] = {}
    pending = False
    for row in result:
        resident = _ResidentRow(*row[:r_end])
        residents[(resident.municipality_code, resident.local_id)] = resident
        conflict, flagged, coupon_pending = row[p_end:]
        pending = pending or bool(coupon_pending)
        if row[r_end] is not None and row[d_end] is not None:
            dose = _DoseRow(*row[r_end:d_end])
            product = _ProductRow(*row[d_end:p_end])
            doses[(dose.municipality_code, dose.id)] = _Dose(
                dose, product, bool(conflict), bool(flagged)
            )
    return _Person(list(residents.values()), list(doses.values()), pending)


def _same_person(key: Any, birth_date: Any) -> Any:
    return and_(col(Resident.my_number_hmac) == key, col(Resident.birth_date) == birth_date)


def issue_for_resident(
    session: Session,
    *,
    actor: Principal,
    request: CertificateRequest,
    signer: Signer,
    now: datetime,
) -> IssuedView:
    """A certificate for the signed-in resident; commits."""
    check_resident_request(actor, request)
    person = _load_person(
        session, _signed_in_person(), key=actor.resident_key, birth=actor.resident_birth_date
    )
    check_signed_in_person(person)
    return _issue(session, actor, person, request, signer, now, CHANNEL_SELF, window=None)


def check_resident_request(actor: Principal, request: CertificateRequest) -> None:
    """What :func:`issue_for_resident` refuses before reading anything."""
    require_role(actor, Role.RESIDENT)
    _check_request(request)
    if actor.resident_key is None:
        raise Forbidden("ROLE_NOT_ALLOWED", "this needs a resident session")


def check_signed_in_person(person: _Person) -> None:
    """What :func:`issue_for_resident` refuses once the person is read."""
    if not person.rows:
        raise NotFound("RESIDENT_NOT_FOUND", "no resident is registered for this sign-in")
    if any(row.protected for row in person.rows):
        raise Forbidden(
            "PROTECTED_RESIDENT",
            "certificates for this resident are issued at the municipality window",
        )


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
    which = and_(
        col(Resident.municipality_code) == municipality_code, col(Resident.local_id) == local_id
    )
    if resident.my_number_hmac is not None:
        which = or_(which, _same_person(resident.my_number_hmac, resident.birth_date))
    return _issue(
        session,
        actor,
        _load_person(session, _person_select().where(which)),
        request,
        signer,
        now,
        CHANNEL_WINDOW,
        window=municipality_code,
    )


def _pending_doses(session: Session, rows: Sequence[_ResidentRow]) -> list[int]:
    coupons = [
        and_(
            col(DoseRecord.municipality_code) == r.municipality_code,
            col(DoseRecord.coupon_number) == r.coupon_number,
        )
        for r in rows
        if r.coupon_number
    ]
    numbers = session.execute(
        select(col(DoseRecord.dose_number)).where(
            or_(*coupons), col(DoseRecord.status) == "pending"
        )
    ).scalars()
    return sorted(numbers)


def _open_flags(session: Session, records: Sequence[_DoseRow]) -> list[QualityFlag]:
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


#: An open quality flag as a refusal names it: (rule code, severity).
OpenFlagRule = tuple[str, str]


def _duplicated(doses: Sequence[_Dose]) -> list[int]:
    numbers = [d.record.dose_number for d in doses]
    return sorted({n for n in numbers if numbers.count(n) > 1})


def refusal_details(person: _Person) -> tuple[bool, bool]:
    """Whether the person's refusal, if any, needs the pending dose numbers (first) or the
    open flags (second) read to explain itself; a settled person needs neither."""
    if person.pending:
        return True, False
    doses = person.doses
    unsettled = any(d.conflict or d.flagged for d in doses) or bool(_duplicated(doses))
    return False, unsettled


def _settled_series(
    session: Session, person: _Person, request: CertificateRequest, window: str | None
) -> tuple[_Dose, list[_Dose]]:
    """The certified dose and the records it is made from, or the refusal naming the cause."""
    need_pending, need_flags = refusal_details(person)
    pending = _pending_doses(session, person.rows) if need_pending else []
    flags = (
        [(f.rule_code, f.severity) for f in _open_flags(session, [d.record for d in person.doses])]
        if need_flags
        else []
    )
    return settle(person, request, window, pending_doses=pending, open_flags=flags)


def settle(
    person: _Person,
    request: CertificateRequest,
    window: str | None,
    *,
    pending_doses: list[int],
    open_flags: Sequence[OpenFlagRule],
) -> tuple[_Dose, list[_Dose]]:
    """:func:`_settled_series` once what :func:`refusal_details` asks for has been read
    (either path reads it its own way; the decision is this one function)."""
    doses = person.doses
    if person.pending:
        raise Conflict(
            "RECORDS_PENDING",
            "some doses on the coupon are not matched to the resident yet",
            doses=sorted(pending_doses),
        )
    if not doses:
        raise Conflict("NO_DOSES", "no dose is recorded for this resident")
    duplicated = _duplicated(doses)
    if duplicated or any(d.conflict for d in doses):
        raise Conflict(
            "RECORDS_CONFLICTING",
            "the resident's records disagree; the municipality must settle them first",
            rules=sorted({rule for rule, severity in open_flags if severity == "conflict"}),
            doses=duplicated,
        )
    if any(d.flagged for d in doses):
        raise Conflict(
            "RECORDS_FLAGGED",
            "the resident's records have open flags to check first",
            rules=sorted({rule for rule, _ in open_flags}),
        )
    if request.dose is None:
        candidates = [d for d in doses if window is None or d.record.municipality_code == window]
        if not candidates:
            raise Forbidden("DOSE_OF_OTHER_MUNICIPALITY", "no dose of this municipality to certify")
        dose = max(candidates, key=lambda d: d.record.dose_number)
    else:
        found = [d for d in doses if d.record.dose_number == request.dose]
        if not found:
            raise NotFound("DOSE_NOT_FOUND", f"no dose {request.dose} is recorded")
        dose = found[0]
        if window is not None and dose.record.municipality_code != window:
            raise Forbidden(
                "DOSE_OF_OTHER_MUNICIPALITY",
                "the window issues certificates for doses its municipality recorded",
            )
    used = [d for d in doses if d.record.dose_number <= dose.record.dose_number]
    return dose, used


def _holder_name(resident: _ResidentRow, request: CertificateRequest) -> certs.HolderName:
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


@dataclass(frozen=True)
class SignedCertificate:
    """A signed certificate and the rows that store it, before they are written."""

    #: Column values of the ``certificate`` row.
    certificate: dict[str, Any]
    #: Column values of each ``certificate_dose_record`` row.
    links: list[dict[str, Any]]
    #: The ``certificate.issue`` audit entry's ``details``.
    audit_details: dict[str, Any]
    view: IssuedView


def _issue(
    session: Session,
    actor: Principal,
    person: _Person,
    request: CertificateRequest,
    signer: Signer,
    now: datetime,
    channel: str,
    *,
    window: str | None,
) -> IssuedView:
    settled = _settled_series(session, person, request, window)
    signed = sign(actor, person, settled, request, signer, now, channel)
    session.add(Certificate(**signed.certificate))
    for link in signed.links:
        session.add(CertificateDoseRecord(**link))
    audit.record(
        session,
        actor,
        ISSUE_ACTION,
        now=now,
        municipality_code=signed.view.municipality_code,
        subject=signed.view.uvci,
        count=1,
        details=signed.audit_details,
    )
    session.commit()
    return signed.view


ISSUE_ACTION = "certificate.issue"


def sign(
    actor: Principal,
    person: _Person,
    settled: tuple[_Dose, list[_Dose]],
    request: CertificateRequest,
    signer: Signer,
    now: datetime,
    channel: str,
) -> SignedCertificate:
    """Sign the certificate of the settled dose (either path stores what this returns)."""
    settled_dose, used_doses = settled
    rows = person.rows
    dose, product = settled_dose.record, settled_dose.product
    used = [d.record for d in used_doses]
    owner = next(
        r
        for r in rows
        if r.municipality_code == dose.municipality_code
        and (r.local_id == dose.resident_local_id or r.coupon_number == dose.coupon_number)
    )
    name = _holder_name(owner, request)
    random_part = base64.b32encode(secrets.token_bytes(_UVCI_RANDOM * 5 // 8))
    opaque = dose.municipality_code + random_part.translate(_FROM_BASE32).decode()
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
    certificate = dict(
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
    links = [
        dict(
            municipality_code=record.municipality_code,
            dose_record_id=record.id,
            uvci=issued.uvci,
            certificate_municipality_code=dose.municipality_code,
            dose_record_version=record.version,
        )
        for record in used
    ]
    view = IssuedView(
        uvci=issued.uvci,
        hc1=issued.hc1,
        kind=request.kind,
        dose_number=dose.dose_number,
        municipality_code=dose.municipality_code,
        issued_at=issued.issued_at,
        expires_at=issued.expires_at,
        kid=issued.kid.hex(),
    )
    details = {"channel": channel, "kind": request.kind, "dose": dose.dose_number}
    return SignedCertificate(certificate, links, details, view)


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
