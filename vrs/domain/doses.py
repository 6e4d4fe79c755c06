"""Dose records: ingest from site tablets, the municipality's listing, the masked preview.

Ingest is idempotent and never overwrites (ARCHITECTURE.md):

- a new record is stored (``CREATED``); its coupon's series is re-evaluated for flags;
- a retry (same client record id, or the same natural key with the same content) returns
  the stored record (``EXISTING``);
- the same natural key with other content is a conflict (409 ``CONFLICT``, or
  ``RECORD_LOCKED`` once a municipality verified the record); it opens one review flag;
- a client record id reused for another record is 409 ``CLIENT_ID_REUSED``.

Racing writers of one record store exactly one row: inserts skip unique-key conflicts
and the stored row is read back. The hot path uses Core statements and a handful of round
trips per call, whether the call carries one record or a thousand.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, insert, literal, or_, select, union_all
from sqlmodel import Session

from vrs.db.concurrency import insert_ignoring_conflicts, lock_keys
from vrs.db.models import Device, Municipality, Site
from vrs.domain import audit
from vrs.domain.auth import Principal, Role, require_municipality, require_role
from vrs.domain.coupons import (
    CouponLine,
    check_coupon_number,
    is_coupon_number,
    parse_coupon_line,
)
from vrs.domain.errors import Conflict, DomainError, Unprocessable
from vrs.domain.places import check_municipality_code
from vrs.domain.refcache import ReferenceData, reference_data
from vrs.domain.rules import (
    DOSE,
    EVENT,
    FLAG,
    RESIDENT,
    OpenFlag,
    check_device,
    check_lot,
    check_municipality,
    check_product,
    check_site,
    check_site_enrollment,
    check_source,
    check_vaccination_date,
    load_open_flags,
    reevaluate,
    series_lock_key,
)

MAX_BATCH = 1000
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SITE_CODE = re.compile(r"[0-9]{10}")
_MAX_DOCTOR_NAME = 100

DEVICE: Table = Device.__table__  # type: ignore[attr-defined]
SITE: Table = Site.__table__  # type: ignore[attr-defined]
MUNICIPALITY: Table = Municipality.__table__  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------
# Input


@dataclass(frozen=True)
class DoseSubmission:
    """One record as a tablet posts it, with the JSON types checked (not yet the rules)."""

    client_record_id: uuid.UUID
    coupon: str
    vaccinated_on: date
    product: str
    lot: str
    site_code: str
    source: str
    doctor_name: str | None = None


def _invalid(name: str, message: str) -> Unprocessable:
    return Unprocessable("INVALID_RECORD", f"{name}: {message}", field=name)


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str):
        raise _invalid(name, "a string is required")
    return value


def parse_submission(raw: object) -> DoseSubmission:
    """Check a posted JSON value's shape; ``INVALID_RECORD`` (with ``field``) or ``BAD_DATE``."""
    if not isinstance(raw, Mapping):
        raise Unprocessable("INVALID_RECORD", "a dose record is a JSON object")
    try:
        client_record_id = uuid.UUID(_text(raw, "client_record_id"))
    except ValueError:
        raise _invalid("client_record_id", "not a UUID") from None
    day = _text(raw, "vaccinated_on")
    try:
        if not _DATE.fullmatch(day):
            raise ValueError(day)
        vaccinated_on = date.fromisoformat(day)
    except ValueError:
        raise Unprocessable("BAD_DATE", "vaccinated_on is a date YYYY-MM-DD") from None
    doctor_name = raw.get("doctor_name")
    if doctor_name is not None and not isinstance(doctor_name, str):
        raise _invalid("doctor_name", "a string or null is required")
    if doctor_name is not None and len(doctor_name) > _MAX_DOCTOR_NAME:
        raise _invalid("doctor_name", f"at most {_MAX_DOCTOR_NAME} characters")
    return DoseSubmission(
        client_record_id=client_record_id,
        coupon=_text(raw, "coupon"),
        vaccinated_on=vaccinated_on,
        product=_text(raw, "product"),
        lot=_text(raw, "lot"),
        site_code=_text(raw, "site_code"),
        source=_text(raw, "source"),
        doctor_name=doctor_name or None,
    )


# ---------------------------------------------------------------------------------------
# Output


#: How orjson writes a record's :meth:`DoseRecordView.as_wire` fields: times in UTC end in Z.
WIRE_OPTIONS = orjson.OPT_UTC_Z


@dataclass(frozen=True)
class DoseRecordView:
    """A stored dose record with the flags open on it."""

    id: uuid.UUID
    municipality_code: str
    coupon_number: str
    dose_number: int
    resident_local_id: str | None
    vaccinated_on: date
    product_code: str
    lot_number: str
    site_code: str
    device_id: uuid.UUID | None
    source: str
    client_record_id: uuid.UUID | None
    doctor_name: str | None
    status: str
    locked: bool
    version: int
    registered_at: datetime
    flags: tuple[OpenFlag, ...] = ()

    def content(self) -> tuple[date, str, str, str]:
        """What a retry must repeat to count as the same dose."""
        return (self.vaccinated_on, self.product_code, self.lot_number, self.site_code)

    def as_wire(self) -> dict[str, Any]:
        """The fields as the API names them, the UUIDs, dates and times left as they are for
        orjson to write (with ``OPT_UTC_Z``: :data:`WIRE_OPTIONS`), which it does several
        times faster than ``str`` and ``isoformat``; the JSON is :meth:`as_dict`'s."""
        return {
            "id": self.id,
            "municipality_code": self.municipality_code,
            "coupon_number": self.coupon_number,
            "dose_number": self.dose_number,
            "resident_local_id": self.resident_local_id,
            "vaccinated_on": self.vaccinated_on,
            "product": self.product_code,
            "lot": self.lot_number,
            "site_code": self.site_code,
            "source": self.source,
            "client_record_id": self.client_record_id,
            "status": self.status,
            "locked": self.locked,
            "version": self.version,
            "registered_at": self.registered_at,
            "flags": [
                {"rule_code": f.rule_code, "severity": f.severity, "message": f.message}
                for f in self.flags
            ],
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (strings for UUIDs, dates and times), named as the API names
        them."""
        loaded: dict[str, Any] = orjson.loads(orjson.dumps(self.as_wire(), option=WIRE_OPTIONS))
        return loaded


_VIEW_NAMES = tuple(name for name in DoseRecordView.__dataclass_fields__ if name != "flags")


def _view(row: Mapping[str, Any], flags: Sequence[OpenFlag] = ()) -> DoseRecordView:
    values: list[Any] = [row[name] for name in _VIEW_NAMES]
    values.append(tuple(flags))
    return DoseRecordView(*values)


class Outcome(StrEnum):
    CREATED = "created"
    EXISTING = "existing"


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    record: DoseRecordView


@dataclass(frozen=True)
class BatchItem:
    """The answer for one record of a batch: a result or an error, never both."""

    index: int
    result: IngestResult | None = None
    error: DomainError | None = None


# ---------------------------------------------------------------------------------------
# Checking


@dataclass(frozen=True)
class _Dose:
    """A submission that passed every reject rule, split into its stored fields."""

    index: int
    line: CouponLine
    submission: DoseSubmission
    lot: str

    #: (municipality, coupon number, dose number) and (municipality, client record id),
    #: made once: a batch looks each of them up several times.
    natural_key: tuple[str, str, int] = field(init=False, repr=False, compare=False)
    client_key: tuple[str, uuid.UUID] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        line = self.line
        keys = (line.municipality_code, line.coupon_number, line.dose_number)
        object.__setattr__(self, "natural_key", keys)
        client = (line.municipality_code, self.submission.client_record_id)
        object.__setattr__(self, "client_key", client)

    def content(self) -> tuple[date, str, str, str]:
        s = self.submission
        return (s.vaccinated_on, s.product, self.lot, s.site_code)

    def incoming(self) -> dict[str, Any]:
        s = self.submission
        return {
            "vaccinated_on": s.vaccinated_on.isoformat(),
            "product": s.product,
            "lot": self.lot,
            "site_code": s.site_code,
            "source": s.source,
            "doctor_name": s.doctor_name,
        }


@dataclass
class _Context:
    """What the reject rules need from the database, read in one round trip."""

    ref: ReferenceData
    device_site: str | None = None
    active_sites: set[str] = field(default_factory=set)
    coupon_formats: dict[str, str] = field(default_factory=dict)
    residents: dict[tuple[str, str], str] = field(default_factory=dict)


def _context_statement() -> Any:
    blank = literal("")
    return union_all(
        select(literal("d"), DEVICE.c.site_code, blank, blank).where(
            DEVICE.c.id == bindparam("device_id"), DEVICE.c.active.is_(True)
        ),
        select(literal("s"), SITE.c.code, blank, blank).where(
            SITE.c.code.in_(bindparam("sites", expanding=True)), SITE.c.active.is_(True)
        ),
        select(literal("m"), MUNICIPALITY.c.code, MUNICIPALITY.c.coupon_format, blank).where(
            MUNICIPALITY.c.code == bindparam("municipality")
        ),
        select(
            literal("r"),
            RESIDENT.c.municipality_code,
            RESIDENT.c.coupon_number,
            RESIDENT.c.local_id,
        ).where(
            RESIDENT.c.municipality_code == bindparam("municipality"),
            RESIDENT.c.coupon_number.in_(bindparam("coupons", expanding=True)),
        ),
    )


# Built once: constructing statements would cost more than running them on the hot path.
_CONTEXT = _context_statement()
_STORED = select(*DOSE.c).where(
    DOSE.c.municipality_code == bindparam("municipality"),
    or_(
        DOSE.c.client_record_id.in_(bindparam("client_ids", expanding=True)),
        DOSE.c.coupon_number.in_(bindparam("coupons", expanding=True)),
    ),
)
_INSERT_EVENT = insert(EVENT)
_INSERT_FLAG = insert(FLAG)


def _load_context(
    session: Session, principal: Principal, lines: Sequence[CouponLine], site_codes: set[str]
) -> _Context:
    """The tablet's site, the active sites, the municipalities' coupon formats and the
    residents holding the posted coupon numbers: one query per municipality in the call."""
    context = _Context(ref=reference_data(session))
    connection = session.connection()
    # At least one round, so that the tablet's enrolment is read even for a batch of which
    # no coupon line parsed.
    for code in sorted({line.municipality_code for line in lines}) or [""]:
        params = {
            "device_id": principal.device_id,
            "sites": sorted(site_codes),
            "municipality": code,
            "coupons": sorted({ln.coupon_number for ln in lines if ln.municipality_code == code}),
        }
        for kind, a, b, c in connection.execute(_CONTEXT, params):
            if kind == "d":
                context.device_site = a
            elif kind == "s":
                context.active_sites.add(a)
            elif kind == "m":
                context.coupon_formats[a] = b
            else:
                context.residents[(a, b)] = c
    return context


def _check(
    index: int, submission: DoseSubmission, line: CouponLine, context: _Context, now: datetime
) -> _Dose:
    """Apply the remaining reject rules to one submission whose coupon line parsed."""
    coupon_format = check_municipality(
        line.municipality_code, context.coupon_formats.get(line.municipality_code)
    )
    check_coupon_number(line.coupon_number, coupon_format)
    check_vaccination_date(submission.vaccinated_on, now)
    check_source(submission.source)
    lot = check_lot(submission.lot)
    check_product(submission.product, context.ref)
    check_site(submission.site_code in context.active_sites)
    check_site_enrollment(submission.site_code, context.device_site or "")
    return _Dose(index=index, line=line, submission=submission, lot=lot)


# ---------------------------------------------------------------------------------------
# Ingest


def ingest(
    session: Session, principal: Principal, record_in: object, now: datetime
) -> IngestResult:
    """Store one posted record (a JSON object) and commit.

    Returns ``CREATED`` or ``EXISTING`` (a retry). Raises a :class:`DomainError` for every
    reject rule; a conflict raises :class:`Conflict` (``CONFLICT``, ``RECORD_LOCKED``,
    ``CLIENT_ID_REUSED``) with the stored record under ``record``, after its review flag
    has been committed.
    """
    [item] = ingest_batch(session, principal, [record_in], now)
    if item.error is not None:
        raise item.error
    assert item.result is not None
    return item.result


def ingest_batch(
    session: Session, principal: Principal, records: Sequence[object], now: datetime
) -> list[BatchItem]:
    """Store up to :data:`MAX_BATCH` records in one transaction and commit.

    Each record gets its own answer, in order; a bad record does not stop the others.
    The whole call fails only for the caller itself: ``ROLE_NOT_ALLOWED``,
    ``DEVICE_NOT_ENROLLED``, ``BATCH_TOO_LARGE``.
    """
    require_role(principal, Role.SITE)
    if len(records) > MAX_BATCH:
        raise Unprocessable(
            "BATCH_TOO_LARGE", f"a batch holds at most {MAX_BATCH} records, not {len(records)}"
        )
    answers: dict[int, BatchItem] = {}
    parsed: list[tuple[int, DoseSubmission, CouponLine]] = []
    for index, raw in enumerate(records):
        try:
            submission = parse_submission(raw)
            parsed.append((index, submission, parse_coupon_line(submission.coupon)))
        except DomainError as exc:
            answers[index] = BatchItem(index, error=exc)
    if records:
        # The tablet is checked first, for every non-empty batch: a deactivated tablet is
        # refused whole even when none of its records would parse.
        sites = {s.site_code for _, s, _ in parsed if _SITE_CODE.fullmatch(s.site_code)}
        context = _load_context(session, principal, [line for *_, line in parsed], sites)
        check_device(context.device_site)
        doses: list[_Dose] = []
        for index, submission, line in parsed:
            try:
                doses.append(_check(index, submission, line, context, now))
            except DomainError as exc:
                answers[index] = BatchItem(index, error=exc)
        for item in _store(session, principal, doses, context, now):
            answers[item.index] = item
    session.commit()
    return [answers[i] for i in range(len(records))]


def _store(
    session: Session, principal: Principal, doses: list[_Dose], context: _Context, now: datetime
) -> list[BatchItem]:
    if not doses:
        return []
    lock_keys(session, {series_lock_key(*d.natural_key[:2]) for d in doses})
    rows = {d.index: _row(d, principal, context, now) for d in _first_of_each_key(doses)}
    inserted = _insert(session, list(rows.values()))
    created = {i: row for i, row in rows.items() if row["id"] in inserted}
    _append_created_events(
        session, principal, [(created[d.index], d) for d in doses if d.index in created], now
    )
    others = [d for d in doses if d.index not in created]
    stored = _StoredRows.read(session, others)
    verdicts = {d.index: stored.verdict(d) for d in others}
    _open_conflict_flags(session, principal, others, verdicts, now)
    flags = _flags_after(session, list(created.values()), [v.row for v in verdicts.values()], now)
    items = [
        BatchItem(i, IngestResult(Outcome.CREATED, _view(row, flags.get(row["id"], ()))))
        for i, row in created.items()
    ]
    for index, verdict in verdicts.items():
        row = verdict.row
        view = None if row is None else _view(row, flags.get(row["id"], ()))
        if verdict.code is None and view is not None:
            items.append(BatchItem(index, IngestResult(Outcome.EXISTING, view)))
        else:
            items.append(BatchItem(index, error=verdict.error(view)))
    return items


def _first_of_each_key(doses: list[_Dose]) -> list[_Dose]:
    """The first record of each natural key and client id in a batch; repeats are answered
    from what the first stored."""
    first: list[_Dose] = []
    keys: set[tuple[str, str, int]] = set()
    client_ids: set[tuple[str, uuid.UUID]] = set()
    for d in doses:
        if d.natural_key not in keys and d.client_key not in client_ids:
            keys.add(d.natural_key)
            client_ids.add(d.client_key)
            first.append(d)
    return first


def _row(d: _Dose, principal: Principal, context: _Context, now: datetime) -> dict[str, Any]:
    municipality_code, coupon_number, dose_number = d.natural_key
    resident = context.residents.get((municipality_code, coupon_number))
    s = d.submission
    return {
        "municipality_code": municipality_code,
        "id": uuid.uuid4(),
        "coupon_number": coupon_number,
        "dose_number": dose_number,
        "resident_local_id": resident,
        "vaccinated_on": s.vaccinated_on,
        "product_code": s.product,
        "lot_number": d.lot,
        "site_code": s.site_code,
        "device_id": principal.device_id,
        "source": s.source,
        "client_record_id": s.client_record_id,
        "doctor_name": s.doctor_name,
        "status": "pending" if resident is None else "recorded",
        "locked": False,
        "version": 1,
        "registered_by": principal.credential_id,
        "registered_at": now,
        "updated_at": now,
    }


def _insert(session: Session, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert the rows that violate no unique key; the ids of those inserted."""
    if not rows:
        return set()
    stmt = insert_ignoring_conflicts(session, DOSE).returning(DOSE.c.id)
    return set(session.connection().execute(stmt, rows).scalars())


def _append_created_events(
    session: Session,
    principal: Principal,
    rows_and_doses: list[tuple[dict[str, Any], _Dose]],
    now: datetime,
) -> None:
    if not rows_and_doses:
        return
    session.connection().execute(
        _INSERT_EVENT,
        [
            {
                "municipality_code": row["municipality_code"],
                "id": uuid.uuid4(),
                "dose_record_id": row["id"],
                "kind": "created",
                "actor_credential_id": principal.credential_id,
                "at": now,
                "after": {
                    **d.incoming(),
                    "client_record_id": str(d.submission.client_record_id),
                    "device_id": str(principal.device_id) if principal.device_id else None,
                },
            }
            for row, d in rows_and_doses
        ],
    )


_DISPUTES = ("CONFLICT", "RECORD_LOCKED")


@dataclass(frozen=True)
class _Verdict:
    """How a record that was not inserted relates to the stored one."""

    row: Mapping[str, Any] | None
    #: None: the stored row is this very record (a retry); else the 409 code.
    code: str | None = None
    message: str = ""

    def error(self, view: DoseRecordView | None) -> DomainError:
        details = {"record": view.as_dict()} if view is not None else {}
        return Conflict(self.code or "RETRY", self.message, **details)


def _content(row: Mapping[str, Any]) -> tuple[date, str, str, str]:
    return (row["vaccinated_on"], row["product_code"], row["lot_number"], row["site_code"])


class _StoredRows:
    """The stored rows a batch's not-inserted records collided with, by client id and key."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.by_client = {(r["municipality_code"], r["client_record_id"]): r for r in rows}
        self.by_key = {
            (r["municipality_code"], r["coupon_number"], r["dose_number"]): r for r in rows
        }

    @classmethod
    def read(cls, session: Session, doses: Sequence[_Dose]) -> _StoredRows:
        rows: list[dict[str, Any]] = []
        for code in sorted({d.line.municipality_code for d in doses}):
            mine = [d for d in doses if d.line.municipality_code == code]
            params = {
                "municipality": code,
                "client_ids": sorted({d.submission.client_record_id for d in mine}),
                "coupons": sorted({d.line.coupon_number for d in mine}),
            }
            rows.extend(dict(r) for r in session.connection().execute(_STORED, params).mappings())
        return cls(rows)

    def knows(self, d: _Dose) -> bool:
        """Whether a stored row shares ``d``'s client id or natural key (else its verdict
        would be ``RETRY``)."""
        return d.client_key in self.by_client or d.natural_key in self.by_key

    def verdict(self, d: _Dose) -> _Verdict:
        row = self.by_client.get(d.client_key)
        if row is not None:
            same_key = (row["municipality_code"], row["coupon_number"], row["dose_number"])
            if same_key == d.natural_key and _content(row) == d.content():
                return _Verdict(row)
            return _Verdict(
                row,
                "CLIENT_ID_REUSED",
                "this client_record_id already names another record; give each record its own",
            )
        row = self.by_key.get(d.natural_key)
        if row is None:
            # Only if the colliding row vanished between insert and read: let the tablet retry.
            return _Verdict(None, "RETRY", "the record changed while it was written; send again")
        if _content(row) == d.content():
            return _Verdict(row)
        if row["locked"]:
            return _Verdict(
                row,
                "RECORD_LOCKED",
                "this dose was verified by the municipality; only a correction can change it",
            )
        return _Verdict(
            row,
            "CONFLICT",
            "this dose is already recorded with other content; it has been sent for review",
        )


def _incoming_key(incoming: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(incoming.get(k) for k in ("vaccinated_on", "product", "lot", "site_code"))


def _open_conflict_flags(
    session: Session,
    principal: Principal,
    doses: Sequence[_Dose],
    verdicts: Mapping[int, _Verdict],
    now: datetime,
) -> None:
    """One review flag and ``conflict`` event per distinct disagreeing upload of a record."""
    disputes = disputed(doses, verdicts)
    if not disputes:
        return
    record_ids = {v.row["id"] for _, v in disputes if v.row is not None}
    existing = session.execute(
        select(FLAG.c.dose_record_id, FLAG.c.rule_code, FLAG.c.details).where(
            FLAG.c.municipality_code.in_({d.line.municipality_code for d, _ in disputes}),
            FLAG.c.dose_record_id.in_(record_ids),
            FLAG.c.severity == "conflict",
            FLAG.c.resolved_at.is_(None),
        )
    )
    seen = {conflict_key(rid, code, details) for rid, code, details in existing}
    flags, events = conflict_rows(principal, disputes, seen, now)
    if flags:
        session.connection().execute(_INSERT_FLAG, flags)
        session.connection().execute(_INSERT_EVENT, events)


def disputed(
    doses: Sequence[_Dose], verdicts: Mapping[int, _Verdict]
) -> list[tuple[_Dose, _Verdict]]:
    """The records whose verdict is a conflict that goes to review."""
    return [(d, verdicts[d.index]) for d in doses if verdicts[d.index].code in _DISPUTES]


def conflict_key(
    record_id: uuid.UUID, rule_code: str, details: Mapping[str, Any] | None
) -> tuple[Any, ...]:
    """What makes two conflict flags the same: record, code and the incoming content."""
    return (record_id, rule_code, _incoming_key((details or {}).get("incoming") or {}))


def conflict_rows(
    principal: Principal,
    disputes: Sequence[tuple[_Dose, _Verdict]],
    seen: set[tuple[Any, ...]],
    now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The flag and event rows for disputes not ``seen`` yet (``seen`` is updated)."""
    flags: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for d, verdict in disputes:
        row = verdict.row
        assert row is not None and verdict.code is not None
        incoming = d.incoming()
        key = (row["id"], verdict.code, _incoming_key(incoming))
        if key in seen:
            continue
        seen.add(key)
        details = {
            "incoming": incoming,
            "client_record_id": str(d.submission.client_record_id),
            "device_id": str(principal.device_id) if principal.device_id else None,
            "site_code": d.submission.site_code,
        }
        common = {"municipality_code": row["municipality_code"], "dose_record_id": row["id"]}
        flags.append(
            {
                **common,
                "id": uuid.uuid4(),
                "rule_code": verdict.code,
                "severity": "conflict",
                "message": verdict.message,
                "details": details,
                "created_at": now,
            }
        )
        events.append(
            {
                **common,
                "id": uuid.uuid4(),
                "kind": "conflict",
                "actor_credential_id": principal.credential_id,
                "at": now,
                "reason": verdict.code,
                "before": _stored_content(row),
                "after": details,
            }
        )
    return flags, events


def _stored_content(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "vaccinated_on": row["vaccinated_on"].isoformat(),
        "product": row["product_code"],
        "lot": row["lot_number"],
        "site_code": row["site_code"],
    }


def _flags_after(
    session: Session,
    created: Sequence[dict[str, Any]],
    others: Sequence[Mapping[str, Any] | None],
    now: datetime,
) -> dict[uuid.UUID, list[OpenFlag]]:
    """Re-evaluate the series that gained a record; the open flags of every answered record."""
    flags: dict[uuid.UUID, list[OpenFlag]] = {}
    for code in sorted({r["municipality_code"] for r in created}):
        coupons = {r["coupon_number"] for r in created if r["municipality_code"] == code}
        flags.update(reevaluate(session, code, coupons, now, locked=True))
    rows = [r for r in others if r is not None]
    for code in sorted({r["municipality_code"] for r in rows}):
        ids = {r["id"] for r in rows if r["municipality_code"] == code}
        flags.update(load_open_flags(session, code, ids))
    return flags


# ---------------------------------------------------------------------------------------
# The municipality's view


def list_records(
    session: Session,
    principal: Principal,
    coupon: str,
    municipality: str | None,
    now: datetime,
) -> list[DoseRecordView]:
    """Every dose record of a coupon, with open flags; audit-logged, commits.

    ``coupon`` is an 18-digit line or a 10-digit coupon number (then ``municipality`` is
    required). Admin reads any municipality, a municipality credential only its own.
    """
    require_role(principal, Role.ADMIN, Role.MUNICIPALITY)
    municipality_code, coupon_number = _coupon_query(coupon.strip(), municipality)
    require_municipality(principal, municipality_code)
    query = (
        select(*DOSE.c)
        .where(DOSE.c.municipality_code == municipality_code, DOSE.c.coupon_number == coupon_number)
        .order_by(DOSE.c.dose_number)
    )
    rows = [dict(r) for r in session.execute(query).mappings()]
    flags = load_open_flags(session, municipality_code, [r["id"] for r in rows])
    audit.record(
        session,
        principal,
        "dose_record.list",
        now=now,
        municipality_code=municipality_code,
        subject=coupon_number,
        count=len(rows),
    )
    session.commit()
    return [_view(r, flags.get(r["id"], ())) for r in rows]


def _coupon_query(coupon: str, municipality: str | None) -> tuple[str, str]:
    if is_coupon_number(coupon):
        if municipality is None:
            raise Unprocessable(
                "MISSING_MUNICIPALITY", "a 10-digit coupon number needs municipality=<code>"
            )
        return check_municipality_code(municipality), coupon
    line = parse_coupon_line(coupon, require_vaccination=False)
    if municipality is not None and municipality.strip() != line.municipality_code:
        raise Unprocessable(
            "MUNICIPALITY_MISMATCH", "municipality differs from the one on the coupon line"
        )
    return line.municipality_code, line.coupon_number
