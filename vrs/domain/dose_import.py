"""Bulk dose import: a municipality loads the paper forms keyed by a data-entry bureau.

:func:`import_doses` reads a spooled UTF-8 CSV file whose header is exactly
:data:`DOSE_COLUMNS` and applies the same rules as a tablet's post, all or nothing: if any
row is bad, the ``422 INVALID_FILE`` lists every bad row (line, column, stable code) and
nothing is written. The checks:

- per row (:class:`DoseRowCheck`): the 18-digit ``coupon`` line (``MALFORMED_COUPON``,
  ``TICKET_NOT_VACCINATION``, ``BAD_MUNICIPALITY_CHECK_DIGIT``, ``WRONG_MUNICIPALITY`` for
  another municipality's coupon, ``BAD_COUPON_CHECK_DIGIT``), ``vaccinated_on``
  (``MISSING_VALUE``, ``BAD_DATE``, ``DATE_IN_FUTURE``, ``DATE_BEFORE_PROGRAMME``),
  ``product`` (``UNKNOWN_PRODUCT``), ``lot`` (``BAD_LOT``), ``site_code`` (``UNKNOWN_SITE``),
  ``doctor_name`` (``FIELD_TOO_LONG``), and the generic CSV checks of
  :mod:`vrs.domain.csvimport`;
- over the file: ``DUPLICATE_DOSE`` (one coupon and dose number twice), ``UNKNOWN_SITE``
  (not a registered site; a site that has closed since is accepted, forms arrive late);
- against the stored records: ``CONFLICT`` (the dose is recorded with other content),
  ``RECORD_LOCKED`` (… and the municipality verified it: only a correction changes it),
  ``RECORD_VOIDED``. A row equal to its stored record is left as it is (a re-sent file).

A good file's doses are inserted with source ``csv``, a ``created`` event each, matched to
the residents holding their coupon numbers (else ``pending``), and the flag rules run on
every series the file touched.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, BinaryIO

from sqlalchemy import Connection
from sqlmodel import Session

from vrs.db import dose_import as sql
from vrs.db.bulk import duplicate_lines
from vrs.db.concurrency import lock_keys
from vrs.domain import audit
from vrs.domain.auth import Principal
from vrs.domain.corrections import _municipality, require_owner
from vrs.domain.coupons import check_coupon_number, parse_coupon_line
from vrs.domain.csvimport import CsvRecords, ErrorReport, RowError
from vrs.domain.errors import Conflict, DomainError, NotFound
from vrs.domain.refcache import reference_data
from vrs.domain.reference import PROGRAMME_START
from vrs.domain.residents import is_valid_damm_coupon_number
from vrs.domain.rules import MAX_LOT_LENGTH, check_lot, reevaluate_selected, today_in_japan
from vrs.settings import Settings

DOSE_COLUMNS = ("coupon", "vaccinated_on", "product", "lot", "site_code", "doctor_name")
DOCTOR_NAME_MAX = 100
_DATE = re.compile(r"([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})")

#: One staged row, in :data:`vrs.db.dose_import.DOSE_STAGE` column order.
StagedDose = tuple[int, str, str, int, str, str, str, str, str | None]


@dataclass(frozen=True)
class DoseImportResult:
    """What a successful import did; ``rows`` = ``created`` + ``unchanged``."""

    rows: int
    created: int
    unchanged: int
    #: Created records whose coupon number no resident holds yet.
    pending: int
    #: Records of the series the file added doses to with at least one open flag afterwards.
    flagged: int


def time_ordered_id_prefix(now: datetime) -> str:
    """The first 24 of 32 hex digits of one import's record (or event) ids, in the UUID
    version 7 layout (a millisecond time, the version, the variant and 42 random bits); the
    SQL appends the file line as 8 hex digits. The ids rise with the lines, so the
    primary-key indexes of the bulk insert are appended to instead of written at random
    places, and no id is made or sent row by row."""
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    high = (millis << 16) | (0x7 << 12) | secrets.randbits(12)
    low = (0b10 << 30) | secrets.randbits(30)
    return f"{high:016x}{low:08x}"


class DoseRowCheck:
    """Checks one CSV row of a dose file and returns it ready for staging.

    A row that passes every check cheaply takes the fast path; any other row is checked
    field by field so that every problem is reported.
    """

    def __init__(
        self, *, municipality_code: str, damm: bool, now: datetime, products: frozenset[str]
    ) -> None:
        self._m = municipality_code
        self._damm = damm
        self._now = now
        self._today = today_in_japan(now)
        self._products = products
        #: Valid vaccination dates seen so far, text -> ISO form.
        self._dates: dict[str, str] = {}

    def __call__(self, line: int, fields: list[str], report: ErrorReport) -> StagedDose | None:
        coupon, day, product, lot, site, doctor = fields
        iso = self._dates.get(day)
        if (
            iso is not None
            and len(coupon) == 18
            and coupon[0] == "1"
            and coupon[1] != "0"
            and coupon[2:8] == self._m
            and coupon.isascii()
            and coupon.isdigit()
            and (not self._damm or is_valid_damm_coupon_number(coupon[8:]))
            and product in self._products
            and 0 < len(lot) <= MAX_LOT_LENGTH
            and lot.isprintable()
            and lot[0] != " "
            and lot[-1] != " "
            and len(site) == 10
            and site.isascii()
            and site.isdigit()
            and len(doctor) <= DOCTOR_NAME_MAX
        ):
            number = coupon[8:]
            return (line, number + coupon[1], number,
                    int(coupon[1]), iso, product, lot, site, doctor or None)  # fmt: skip
        return self._check_each_field(line, fields, report)

    def _check_each_field(
        self, line: int, fields: list[str], report: ErrorReport
    ) -> StagedDose | None:
        before = report.total
        coupon, day, product, lot, site, doctor = fields
        number, dose_number = self._coupon(line, coupon, report)
        iso = self._dates.get(day) or self._date(line, day, report)
        if product not in self._products:
            report.add(
                line, "product", "UNKNOWN_PRODUCT", "the product code is not a known vaccine"
            )
        try:
            lot = check_lot(lot)
        except DomainError as exc:
            report.add(line, "lot", exc.code, exc.message)
        if not (len(site) == 10 and site.isascii() and site.isdigit()):
            report.add(line, "site_code", "UNKNOWN_SITE", "a site code is 10 digits")
        if len(doctor) > DOCTOR_NAME_MAX:
            report.add(
                line, "doctor_name", "FIELD_TOO_LONG", f"at most {DOCTOR_NAME_MAX} characters"
            )
        if report.total != before:
            return None
        return (line, number + str(dose_number), number,
                dose_number, iso, product, lot, site, doctor or None)  # fmt: skip

    def _coupon(self, line: int, coupon: str, report: ErrorReport) -> tuple[str, int]:
        try:
            parsed = parse_coupon_line(coupon)
            if parsed.municipality_code != self._m:
                report.add(
                    line,
                    "coupon",
                    "WRONG_MUNICIPALITY",
                    f"the coupon is of municipality {parsed.municipality_code}, not {self._m}",
                )
            check_coupon_number(parsed.coupon_number, "damm" if self._damm else "legacy")
        except DomainError as exc:
            report.add(line, "coupon", exc.code, exc.message)
            return "", 0
        return parsed.coupon_number, parsed.dose_number

    def _date(self, line: int, value: str, report: ErrorReport) -> str:
        if not value:
            report.add(line, "vaccinated_on", "MISSING_VALUE", "vaccinated_on is required")
            return value
        match = _DATE.fullmatch(value)
        try:
            parsed = date(*(int(g) for g in match.groups())) if match else None
        except ValueError:
            parsed = None
        if parsed is None:
            report.add(line, "vaccinated_on", "BAD_DATE", f"{value!r} is not a date (YYYY-MM-DD)")
        elif parsed > self._today:
            report.add(
                line, "vaccinated_on", "DATE_IN_FUTURE", f"{parsed} is later than today in Japan"
            )
        elif parsed < PROGRAMME_START:
            report.add(
                line,
                "vaccinated_on",
                "DATE_BEFORE_PROGRAMME",
                f"{parsed} is before the first dose in Japan ({PROGRAMME_START})",
            )
        else:
            self._dates[value] = parsed.isoformat()
            return self._dates[value]
        return value


def authorise_dose_import(session: Session, *, actor: Principal, municipality_code: str) -> None:
    """Refuse an import the actor may not make, before its body is read."""
    require_owner(actor, municipality_code)
    _municipality(session, municipality_code)


def import_doses(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    body: BinaryIO,
    settings: Settings,
    now: datetime,
) -> DoseImportResult:
    """Import a dose CSV file (open, binary, at its start) all or nothing, and commit.

    Raises ``403`` (not this municipality's credential), ``404 UNKNOWN_MUNICIPALITY``,
    ``422 EMPTY_FILE``, ``422 INVALID_FILE`` (every bad row; nothing written) or
    ``409 IMPORT_RACE`` (a tablet recorded one of the file's doses while it was being
    imported; nothing written, send the file again).
    """
    require_owner(actor, municipality_code)
    municipality = _municipality(session, municipality_code)
    lock_keys(session, [f"dose-import:{municipality_code}"])
    report = ErrorReport(settings.max_reported_errors)
    records = CsvRecords.open(
        body, DOSE_COLUMNS, max_line_bytes=settings.max_csv_line_bytes, report=report
    )
    check = DoseRowCheck(
        municipality_code=municipality_code,
        damm=municipality.coupon_format == "damm",
        now=now,
        products=frozenset(reference_data(session).products),
    )
    conn = session.connection()
    stage = sql.DOSE_STAGE
    sql.sort_in_memory(conn)
    stage.create(conn)
    stage.load(
        conn, (row for line, fields in records if (row := check(line, fields, report)) is not None)
    )
    # The checks below join or group the whole table: hash joins need no index on it.
    stage.analyze(conn)
    if not sql.lock_references(conn, municipality_code):
        raise NotFound("UNKNOWN_MUNICIPALITY", f"no municipality {municipality_code}")
    _report_clashes(conn, municipality_code, report)
    report.raise_if_any()
    unchanged = sql.drop_stored(conn, municipality_code)
    created = records.rows - unchanged
    flagged = 0
    if created:
        if unchanged:  # the planner should see the staging table as it is now
            stage.analyze(conn)
        recheck = _series_to_recheck(session, conn, municipality_code)
        try:
            sql.insert_records(
                conn,
                municipality_code,
                actor.credential_id,
                now,
                ids=(time_ordered_id_prefix(now), time_ordered_id_prefix(now)),
            )
        except sql.StoredMeanwhile:
            session.rollback()
            raise Conflict(
                "IMPORT_RACE",
                "doses of this file were recorded by a tablet while it was imported; "
                "nothing was written, send the file again",
            ) from None
        # The import's own lock serialises imports; a file may hold more coupons than
        # PostgreSQL's lock table has room for, so the series locks are not taken one by one.
        if recheck is not None:
            sql.refresh_statistics(conn)
            flagged = reevaluate_selected(session, municipality_code, recheck, now)
    pending = sql.count_pending(conn, municipality_code) if created else 0
    stage.drop(conn)
    result = DoseImportResult(
        rows=records.rows,
        created=created,
        unchanged=unchanged,
        pending=pending,
        flagged=flagged,
    )
    audit.record(
        session,
        actor,
        "dose_records.import",
        now=now,
        municipality_code=municipality_code,
        count=records.rows,
        details={
            "created": result.created,
            "unchanged": result.unchanged,
            "pending": result.pending,
            "flagged": result.flagged,
        },
    )
    session.commit()
    return result


def _series_to_recheck(session: Session, conn: Connection, municipality_code: str) -> Any:
    """Before the insert: a subquery of the coupons whose series the flag rules must run on
    once the file's doses are in, or ``None`` when there are none.

    On PostgreSQL only the series that could change are read back into the Python rules
    (:func:`vrs.db.dose_import.create_recheck`): a new coupon whose doses are all in the file
    and meet no rule has nothing to open, resolve or match, so it is left out. SQLite runs
    the rules on every touched series.
    """
    if conn.dialect.name != "postgresql":
        return sql.staged_coupon_select()
    ref = reference_data(session)
    rules = json.dumps([asdict(r) for r in ref.interval_rules], default=date.isoformat)
    ranges = json.dumps([asdict(a) for a in ref.age_ranges], default=date.isoformat)
    if not sql.create_recheck(conn, municipality_code, rules, ranges):
        return None
    conn.exec_driver_sql(f"ANALYZE {sql.RECHECK}")
    return sql.recheck_select()


_CLASH_MESSAGES = {
    "RECORD_VOIDED": "this dose was voided by the municipality; record it again by a correction",
    "RECORD_LOCKED": "this dose was verified by the municipality; only a correction can change it",
    "CONFLICT": "this dose is already recorded with other content (record {id}); correct it "
    "or leave the row out",
}


def _report_clashes(conn: Connection, municipality_code: str, report: ErrorReport) -> None:
    """Add the set-based problems: repeats, unknown sites, clashes with stored records."""
    dups = duplicate_lines(conn, sql.DOSE_STAGE, "dose_key", limit=report.limit)
    report.add_sorted(
        (
            RowError(line, "coupon", "DUPLICATE_DOSE", f"the same dose is on line {first}")
            for line, first in dups.lines
        ),
        dups.total,
    )
    sites = sql.unknown_sites(conn, limit=report.limit)
    report.add_sorted(
        (
            RowError(line, "site_code", "UNKNOWN_SITE", f"{site} is not a registered site")
            for line, site in sites.rows
        ),
        sites.total,
    )
    products = sql.unknown_products(conn, limit=report.limit)
    report.add_sorted(
        (
            RowError(line, "product", "UNKNOWN_PRODUCT", f"{product} is not a known vaccine")
            for line, product in products.rows
        ),
        products.total,
    )
    clashes = sql.stored_clashes(conn, municipality_code, limit=report.limit)
    errors = []
    for line, record_id, locked, status in clashes.rows:
        code = "RECORD_VOIDED" if status == "voided" else "RECORD_LOCKED" if locked else "CONFLICT"
        errors.append(
            RowError(line, None, code, _CLASH_MESSAGES[code].format(id=uuid.UUID(str(record_id))))
        )
    report.add_sorted(errors, clashes.total)
