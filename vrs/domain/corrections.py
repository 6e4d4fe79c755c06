"""A municipality keeps its dose records right: corrections, verification (the lock), voids.

Only the owning municipality's credential changes its records (the national operator and
other tenants are refused: ``ROLE_NOT_ALLOWED``, ``OTHER_TENANT``). Every change names the
record version it was made against (``VERSION_MISMATCH`` when someone else changed it
first), writes one ``dose_record_event`` with the old and the new values, runs the flag
rules of the affected series again and revokes the certificates made from the record.

- :func:`correct_record`: new field values with a reason; version + 1. A verified (locked)
  record can be corrected too: this is the only way its content ever changes, and the
  event says that it was locked.
- :func:`verify_record`: the lock. From then on uploads of other content for the dose are
  refused with ``RECORD_LOCKED`` by every ingest path (tablet posts, batches, bulk import).
- :func:`void_record`: the record no longer counts (status ``voided``); version + 1.

Codes: ``RECORD_NOT_FOUND``, ``VERSION_MISMATCH``, ``RECORD_VOIDED``, ``OPEN_CONFLICT``,
``NO_CHANGE``, ``UNKNOWN_FIELD``, ``BAD_FIELD``, ``MISSING_REASON``,
``DOSE_ALREADY_RECORDED`` and the ingest reject codes for the new values.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from vrs.db.concurrency import lock_keys
from vrs.db.models import Municipality, Site
from vrs.domain import audit
from vrs.domain.auth import Principal, Role, require_municipality, require_role
from vrs.domain.certificates import revoke_for_dose_records
from vrs.domain.coupons import check_coupon_number, is_coupon_number
from vrs.domain.doses import _DATE, _MAX_DOCTOR_NAME, _SITE_CODE, DoseRecordView, _view
from vrs.domain.errors import Conflict, NotFound, Unprocessable
from vrs.domain.refcache import reference_data
from vrs.domain.rules import (
    DOSE,
    EVENT,
    FLAG,
    RESIDENT,
    check_lot,
    check_product,
    check_vaccination_date,
    load_open_flags,
    reevaluate,
    series_lock_key,
)

MAX_REASON = 500

#: API field name -> ``dose_record`` column, for the fields a correction may change.
EDITABLE = {
    "coupon_number": "coupon_number",
    "dose_number": "dose_number",
    "vaccinated_on": "vaccinated_on",
    "product": "product_code",
    "lot": "lot_number",
    "site_code": "site_code",
    "doctor_name": "doctor_name",
}


# ---------------------------------------------------------------------------------------
# Who may act


def require_owner(principal: Principal, municipality_code: str) -> None:
    """Only the municipality's own credential changes its records."""
    require_role(principal, Role.MUNICIPALITY)
    require_municipality(principal, municipality_code)


def require_reader(principal: Principal, municipality_code: str) -> None:
    """The national operator or the municipality itself reads its records."""
    require_role(principal, Role.ADMIN, Role.MUNICIPALITY)
    require_municipality(principal, municipality_code)


def check_reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise Unprocessable("MISSING_REASON", "say why (reason: 1-500 characters)")
    reason = reason.strip()
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise Unprocessable("MISSING_REASON", "a reason is 1-500 printable characters")
    return reason


# ---------------------------------------------------------------------------------------
# Certificates


def revoke_certificates(
    session: Session,
    *,
    municipality_code: str,
    record_ids: Sequence[uuid.UUID],
    reason: str,
    actor: Principal,
    now: datetime,
) -> int:
    """Revoke every active certificate made from these records; how many were revoked.

    The one place corrections, voids and conflict decisions call the certificate service's
    revoke operation from (interfaces.md); it does not commit, the change's transaction does.
    """
    return revoke_for_dose_records(
        session,
        municipality_code=municipality_code,
        dose_record_ids=list(record_ids),
        reason=reason,
        actor=actor,
        now=now,
    )


# ---------------------------------------------------------------------------------------
# Reading one record


def parse_record_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound("RECORD_NOT_FOUND", f"no dose record {text!r}") from None


def _municipality(session: Session, municipality_code: str) -> Municipality:
    row = session.get(Municipality, municipality_code)
    if row is None:
        raise NotFound("UNKNOWN_MUNICIPALITY", f"no municipality {municipality_code}")
    return row


def _row(session: Session, municipality_code: str, record_id: uuid.UUID) -> dict[str, Any]:
    found = (
        session.connection()
        .execute(
            select(*DOSE.c).where(
                DOSE.c.municipality_code == municipality_code, DOSE.c.id == record_id
            )
        )
        .mappings()
        .first()
    )
    if found is None:
        raise NotFound("RECORD_NOT_FOUND", f"no dose record {record_id} in {municipality_code}")
    return dict(found)


def record_view(session: Session, municipality_code: str, record_id: uuid.UUID) -> DoseRecordView:
    """The stored record with its open flags."""
    row = _row(session, municipality_code, record_id)
    flags = load_open_flags(session, municipality_code, [record_id])
    return _view(row, flags.get(record_id, ()))


def _locked_row(
    session: Session,
    municipality_code: str,
    record_id: uuid.UUID,
    version: int,
    extra_coupons: Sequence[str] = (),
) -> dict[str, Any]:
    """The record, with the series locks of its coupon (and ``extra_coupons``) held, at
    ``version``; ``VERSION_MISMATCH`` (409, with the current record) otherwise."""
    row = _row(session, municipality_code, record_id)
    coupons = {row["coupon_number"], *extra_coupons}
    lock_keys(session, (series_lock_key(municipality_code, c) for c in coupons))
    row = _row(session, municipality_code, record_id)  # as it is under the lock
    if row["version"] != version:
        raise Conflict(
            "VERSION_MISMATCH",
            f"the record is at version {row['version']}, not {version}; "
            "reload it and apply the change again",
            record=record_view(session, municipality_code, record_id).as_dict(),
        )
    return row


# ---------------------------------------------------------------------------------------
# Corrections


def _field_error(name: str, message: str) -> Unprocessable:
    return Unprocessable("BAD_FIELD", f"{name}: {message}", field=name)


def parse_changes(
    session: Session, municipality: Municipality, changes: object, now: datetime
) -> dict[str, Any]:
    """The new values by column, each checked by the ingest rules (no reject rule skipped)."""
    if not isinstance(changes, Mapping) or not changes:
        raise Unprocessable("NO_CHANGE", "changes is an object with at least one field")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise Unprocessable(
            "UNKNOWN_FIELD",
            f"these fields cannot be corrected: {', '.join(map(str, unknown))} "
            f"(correctable: {', '.join(EDITABLE)})",
        )
    out: dict[str, Any] = {}
    for name, value in changes.items():
        column = EDITABLE[name]
        if name == "doctor_name":
            if value is not None and (not isinstance(value, str) or len(value) > _MAX_DOCTOR_NAME):
                raise _field_error(name, f"a string of at most {_MAX_DOCTOR_NAME} characters")
            out[column] = value or None
            continue
        if name == "dose_number":
            if type(value) is not int or not 1 <= value <= 9:
                raise _field_error(name, "an integer 1-9 (the coupon's dose digit)")
            out[column] = value
            continue
        if not isinstance(value, str):
            raise _field_error(name, "a string is required")
        out[column] = _checked_text(session, municipality, name, value, now)
    return out


def _checked_text(
    session: Session, municipality: Municipality, name: str, value: str, now: datetime
) -> Any:
    if name == "coupon_number":
        if not is_coupon_number(value):
            raise _field_error(name, "a coupon number is 10 digits")
        check_coupon_number(value, municipality.coupon_format)
        return value
    if name == "vaccinated_on":
        try:
            if not _DATE.fullmatch(value):
                raise ValueError(value)
            day = date.fromisoformat(value)
        except ValueError:
            raise Unprocessable("BAD_DATE", "vaccinated_on is a date YYYY-MM-DD") from None
        check_vaccination_date(day, now)
        return day
    if name == "product":
        check_product(value, reference_data(session))
        return value
    if name == "lot":
        return check_lot(value)
    # site_code: a registered site; it may have closed since the dose was given.
    if not _SITE_CODE.fullmatch(value) or session.get(Site, value) is None:
        raise Unprocessable("UNKNOWN_SITE", "site_code is not a registered vaccination site")
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value


def _api_fields(columns: Mapping[str, Any]) -> dict[str, Any]:
    names = {column: name for name, column in EDITABLE.items()}
    return {names.get(c, c): _jsonable(v) for c, v in columns.items()}


@dataclass(frozen=True)
class Change:
    """What a correction, verification or void did: the record after it."""

    record: DoseRecordView
    revoked_certificates: int = 0


def correct_record(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    record_id: str,
    version: int,
    changes: object,
    reason: object,
    now: datetime,
) -> Change:
    """Change a record's fields (a new version), re-run the rules, revoke its certificates;
    commits. The old and new values stay in the ``corrected`` event."""
    require_owner(actor, municipality_code)
    why = check_reason(reason)
    municipality = _municipality(session, municipality_code)
    rid = parse_record_id(record_id)
    new = parse_changes(session, municipality, changes, now)
    change = apply_correction(
        session,
        actor=actor,
        municipality_code=municipality_code,
        record_id=rid,
        version=version,
        new=new,
        reason=why,
        kind="corrected",
        now=now,
    )
    session.commit()
    return change


def apply_correction(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    record_id: uuid.UUID,
    version: int,
    new: Mapping[str, Any],
    reason: str,
    kind: str,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
) -> Change:
    """Write checked new column values to a record as its next version (does not commit)."""
    target_coupon = new.get("coupon_number")
    row = _locked_row(
        session, municipality_code, record_id, version, [target_coupon] if target_coupon else []
    )
    if row["status"] == "voided":
        raise Conflict("RECORD_VOIDED", "a voided record cannot be corrected")
    changed = {c: v for c, v in new.items() if row[c] != v}
    if not changed:
        raise Unprocessable("NO_CHANGE", "the record already holds these values")
    coupon = changed.get("coupon_number", row["coupon_number"])
    dose_number = changed.get("dose_number", row["dose_number"])
    values: dict[str, Any] = dict(changed)
    if (coupon, dose_number) != (row["coupon_number"], row["dose_number"]):
        _check_key_free(session, municipality_code, coupon, dose_number)
    if "coupon_number" in changed:
        holder = session.connection().execute(
            select(RESIDENT.c.local_id).where(
                RESIDENT.c.municipality_code == municipality_code,
                RESIDENT.c.coupon_number == coupon,
            )
        )
        local_id = holder.scalar_one_or_none()
        values["resident_local_id"] = local_id
        values["status"] = "recorded" if local_id is not None else "pending"
    values.update(version=row["version"] + 1, updated_at=now)
    session.connection().execute(
        update(DOSE)
        .where(DOSE.c.municipality_code == municipality_code, DOSE.c.id == record_id)
        .values(**values)
    )
    before = {c: row[c] for c in values if c != "updated_at"}
    after = {c: v for c, v in values.items() if c != "updated_at"}
    _event(
        session,
        actor,
        municipality_code,
        record_id,
        kind,
        now,
        reason,
        before=_api_fields(before) | {"locked": row["locked"]},
        after=_api_fields(after) | dict(extra or {}),
    )
    reevaluate(session, municipality_code, {row["coupon_number"], coupon}, now, locked=True)
    revoked = revoke_certificates(
        session,
        municipality_code=municipality_code,
        record_ids=[record_id],
        reason=f"dose record {kind}: {reason}",
        actor=actor,
        now=now,
    )
    audit.record(
        session,
        actor,
        f"dose_record.{kind}",
        now=now,
        municipality_code=municipality_code,
        subject=str(record_id),
        count=1,
        purpose=reason,
        details={
            "fields": sorted(_api_fields(changed)),
            "was_locked": row["locked"],
            "version": values["version"],
            "revoked_certificates": revoked,
        },
    )
    return Change(record_view(session, municipality_code, record_id), revoked)


def _check_key_free(
    session: Session, municipality_code: str, coupon_number: str, dose_number: int
) -> None:
    taken = session.connection().execute(
        select(DOSE.c.id).where(
            DOSE.c.municipality_code == municipality_code,
            DOSE.c.coupon_number == coupon_number,
            DOSE.c.dose_number == dose_number,
        )
    )
    other = taken.scalar_one_or_none()
    if other is not None:
        raise Conflict(
            "DOSE_ALREADY_RECORDED",
            f"dose {dose_number} of coupon {coupon_number} is already recorded "
            f"(record {other}); correct or void that record first",
            other_record_id=str(other),
        )


def _event(
    session: Session,
    actor: Principal,
    municipality_code: str,
    record_id: uuid.UUID,
    kind: str,
    now: datetime,
    reason: str | None,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.connection().execute(
        EVENT.insert(),
        {
            "municipality_code": municipality_code,
            "id": uuid.uuid4(),
            "dose_record_id": record_id,
            "kind": kind,
            "actor_credential_id": actor.credential_id,
            "at": now,
            "reason": reason,
            "before": before,
            "after": after,
        },
    )


# ---------------------------------------------------------------------------------------
# Verify and void


def _open_conflicts(session: Session, municipality_code: str, record_id: uuid.UUID) -> int:
    flags = load_open_flags(session, municipality_code, [record_id]).get(record_id, [])
    return sum(1 for f in flags if f.severity == "conflict")


def verify_record(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    record_id: str,
    version: int,
    now: datetime,
) -> Change:
    """Lock a record: no upload can change it any more, only :func:`correct_record`.

    Verifying a verified record changes nothing. Refused while a conflict on the record is
    open (``OPEN_CONFLICT``: decide it first) and for a voided record. Commits.
    """
    require_owner(actor, municipality_code)
    _municipality(session, municipality_code)
    rid = parse_record_id(record_id)
    row = _locked_row(session, municipality_code, rid, version)
    if row["status"] == "voided":
        raise Conflict("RECORD_VOIDED", "a voided record cannot be verified")
    if not row["locked"]:
        if _open_conflicts(session, municipality_code, rid):
            raise Conflict(
                "OPEN_CONFLICT",
                "another upload disagrees with this record; resolve the conflict first",
            )
        session.connection().execute(
            update(DOSE)
            .where(DOSE.c.municipality_code == municipality_code, DOSE.c.id == rid)
            .values(locked=True, updated_at=now)
        )
        _event(
            session,
            actor,
            municipality_code,
            rid,
            "verified",
            now,
            None,
            before={"locked": False},
            after={"locked": True, "version": row["version"]},
        )
        audit.record(
            session,
            actor,
            "dose_record.verify",
            now=now,
            municipality_code=municipality_code,
            subject=str(rid),
            count=1,
        )
    view = record_view(session, municipality_code, rid)
    session.commit()
    return Change(view)


def void_record(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    record_id: str,
    version: int,
    reason: object,
    now: datetime,
) -> Change:
    """Void a record (entered in error, given to the wrong coupon, ...): it no longer counts
    for the rules or for certificates, which are revoked. Its open flags are closed. Commits."""
    require_owner(actor, municipality_code)
    why = check_reason(reason)
    _municipality(session, municipality_code)
    rid = parse_record_id(record_id)
    row = _locked_row(session, municipality_code, rid, version)
    if row["status"] == "voided":
        raise Conflict("RECORD_VOIDED", "the record is already voided")
    new_version = row["version"] + 1
    session.connection().execute(
        update(DOSE)
        .where(DOSE.c.municipality_code == municipality_code, DOSE.c.id == rid)
        .values(status="voided", version=new_version, updated_at=now)
    )
    session.connection().execute(
        update(FLAG)
        .where(
            FLAG.c.municipality_code == municipality_code,
            FLAG.c.dose_record_id == rid,
            FLAG.c.resolved_at.is_(None),
        )
        .values(resolved_at=now, resolved_by=resolver(actor), resolution="record voided")
    )
    _event(
        session,
        actor,
        municipality_code,
        rid,
        "voided",
        now,
        why,
        before={"status": row["status"], "version": row["version"], "locked": row["locked"]},
        after={"status": "voided", "version": new_version},
    )
    reevaluate(session, municipality_code, [row["coupon_number"]], now, locked=True)
    revoked = revoke_certificates(
        session,
        municipality_code=municipality_code,
        record_ids=[rid],
        reason=f"dose record voided: {why}",
        actor=actor,
        now=now,
    )
    audit.record(
        session,
        actor,
        "dose_record.void",
        now=now,
        municipality_code=municipality_code,
        subject=str(rid),
        count=1,
        purpose=why,
        details={"was_locked": row["locked"], "revoked_certificates": revoked},
    )
    view = record_view(session, municipality_code, rid)
    session.commit()
    return Change(view, revoked)


def resolver(actor: Principal) -> str:
    """How a flag records who closed it: the credential, never a person's name."""
    return f"{actor.role.value}:{actor.credential_id}"[:60]
