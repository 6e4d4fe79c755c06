"""Residents: the all-or-nothing CSV import of a municipality's register, and look-ups.

:func:`import_residents` reads a spooled UTF-8 CSV file whose header is exactly
:data:`RESIDENT_COLUMNS`, checks every row, and writes nothing unless every row is good; the
``422 INVALID_FILE`` lists every bad row with its line and a stable code. A good file
upserts by ``(municipality, local_id)`` and then matches pending dose records to the
residents holding their coupon numbers.

Field rules: ``local_id`` ASCII letters, digits, ``-`` and ``_`` (at most 20); names 1-100
characters; kana in katakana (hiragana is converted), ``ー`` and full-width spaces;
``birth_date`` ``YYYY-MM-DD`` (or ``YYYY/MM/DD``) from 1900-01-01 to today in Japan; ``sex``
``M``/``F``/``X`` or ISO 5218 ``1``/``2``/``9``/``0`` (stored as M, F, X, X); ``my_number``
empty or 12 digits with their check digit; ``coupon_number`` empty or 10 digits (with a Damm
check digit in a ``damm`` municipality); ``address`` at most 300 characters; ``protected``
``true``/``false``/``1``/``0``/empty.

My Numbers are checked and kept only as :func:`vrs.domain.mynumber.my_number_hmac`; they
never leave this module, not even in error messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import BinaryIO

from sqlalchemy import Connection
from sqlmodel import Session

from vrs.db import resident_import as sql
from vrs.db.bulk import duplicate_lines
from vrs.db.concurrency import lock_keys
from vrs.db.models import Municipality, Resident
from vrs.domain import audit
from vrs.domain.auth import Principal, require_municipality
from vrs.domain.checkdigits import damm_check_digit
from vrs.domain.csvimport import CsvRecords, ErrorReport, RowError
from vrs.domain.errors import NotFound
from vrs.domain.mynumber import MyNumberHasher, is_valid_my_number
from vrs.settings import Settings

RESIDENT_COLUMNS = (
    "local_id",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "sex",
    "my_number",
    "coupon_number",
    "address",
    "protected",
)
#: Birth dates are calendar dates in Japan.
JST = timezone(timedelta(hours=9), "JST")
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
NAME_MAX = 100
ADDRESS_MAX = 300
LOCAL_ID_MAX = 20

_LOCAL_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,19}")
_KATAKANA = re.compile("[ァ-ヶー　]+")
_KANA_FAST = re.compile(f"[ァ-ヶー　]{{1,{NAME_MAX}}}")
_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in range(ord("ぁ"), ord("ゖ") + 1)}
_DATE = re.compile(r"([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})")
_COUPON = re.compile(r"[0-9]{10}")
#: ISO 5218 digits (0 not known, 1 male, 2 female, 9 not applicable) and letters -> M/F/X.
SEXES = {"M": "M", "F": "F", "X": "X", "m": "M", "f": "F", "x": "X"}
SEXES |= {"1": "M", "2": "F", "9": "X", "0": "X"}
_PROTECTED = {"": False, "0": False, "1": True, "false": False, "true": True}

#: One staged row, in :data:`vrs.db.resident_import.RESIDENT_STAGE` column order.
StagedResident = tuple[int, str, str, str, str, str, str, str, str | None, str | None, str, bool]


@dataclass(frozen=True)
class ImportResult:
    """What a successful import did; ``rows`` = created + updated + unchanged."""

    rows: int
    created: int
    updated: int
    unchanged: int
    matched_pending_doses: int


def _damm_chunk_tables() -> tuple[list[dict[str, int]], list[dict[str, int]]]:
    """Damm states after a 3-digit and after a 1-digit chunk, from each state.

    Built from the public :func:`damm_check_digit`: in Damm's quasigroup every row is a
    permutation, so each state ``s`` is reached from the start by exactly one digit.
    """
    reach = {damm_check_digit(str(d)): str(d) for d in range(10)}
    three = [
        {f"{v:03d}": damm_check_digit(reach[s] + f"{v:03d}") for v in range(1000)}
        for s in range(10)
    ]
    one = [{str(d): damm_check_digit(reach[s] + str(d)) for d in range(10)} for s in range(10)]
    return three, one


_DAMM3, _DAMM1 = _damm_chunk_tables()


def is_valid_damm_coupon_number(number: str) -> bool:
    """True for 10 ASCII digits whose Damm check holds (4 table look-ups; for imports)."""
    if len(number) != 10:
        return False
    try:
        state = _DAMM3[_DAMM3[_DAMM3[0][number[0:3]]][number[3:6]]][number[6:9]]
        return _DAMM1[state][number[9]] == 0
    except KeyError:
        return False


class ResidentRowCheck:
    """Checks one CSV row of a resident file and returns it normalised for staging.

    Built once per import with what the checks depend on (the HMAC key, today's date in
    Japan, the municipality's coupon format); problems go to the :class:`ErrorReport`.
    A row that passes every check cheaply takes the fast path; any other row is checked
    field by field so that every problem is reported.
    """

    def __init__(self, *, hmac_key: bytes, today: date, damm_coupons: bool) -> None:
        self._hash = MyNumberHasher(hmac_key)
        self._today = today
        self._damm = damm_coupons
        #: Valid birth dates seen so far (at most ~45,000 distinct), text -> ISO form.
        self._dates: dict[str, str] = {}

    def __call__(self, line: int, fields: list[str], report: ErrorReport) -> StagedResident | None:
        (local_id, family, given, family_kana, given_kana, birth, sex, my_number, coupon,
         address, protected) = fields  # fmt: skip
        birth_date = self._dates.get(birth)
        sex_code = SEXES.get(sex)
        is_protected = _PROTECTED.get(protected)
        if (
            birth_date is not None
            and sex_code is not None
            and is_protected is not None
            and _LOCAL_ID.fullmatch(local_id)
            and 0 < len(family) <= NAME_MAX
            and 0 < len(given) <= NAME_MAX
            and not family.isspace()
            and not given.isspace()
            and _KANA_FAST.fullmatch(family_kana)
            and _KANA_FAST.fullmatch(given_kana)
            and len(address) <= ADDRESS_MAX
            and (
                not coupon
                or (
                    is_valid_damm_coupon_number(coupon) if self._damm else _COUPON.fullmatch(coupon)
                )
            )
            and (not my_number or is_valid_my_number(my_number))
        ):
            hashed = self._hash(my_number) if my_number else None
            return (line, local_id, family, given, family_kana, given_kana, birth_date, sex_code,
                    hashed, coupon or None, address, is_protected)  # fmt: skip
        return self._check_each_field(line, fields, report)

    def _check_each_field(
        self, line: int, fields: list[str], report: ErrorReport
    ) -> StagedResident | None:
        before = report.total
        (local_id, family, given, family_kana, given_kana, birth, sex, my_number, coupon,
         address, protected) = fields  # fmt: skip
        self._local_id(line, local_id, report)
        self._name(line, "family_name", family, report)
        self._name(line, "given_name", given, report)
        family_kana = self._kana(line, "family_name_kana", family_kana, report)
        given_kana = self._kana(line, "given_name_kana", given_kana, report)
        birth_date = self._dates.get(birth) or self._birth_date(line, birth, report)
        sex_code = SEXES.get(sex) or self._bad_sex(line, sex, report)
        hashed = self._my_number(line, my_number, report) if my_number else None
        if coupon:
            self._coupon(line, coupon, report)
        if len(address) > ADDRESS_MAX:
            report.add(line, "address", "FIELD_TOO_LONG", f"at most {ADDRESS_MAX} characters")
        is_protected = self._protected(line, protected, report)
        if report.total != before:
            return None
        return (line, local_id, family, given, family_kana, given_kana, birth_date, sex_code,
                hashed, coupon or None, address, is_protected)  # fmt: skip

    @staticmethod
    def _local_id(line: int, value: str, report: ErrorReport) -> None:
        if not value:
            report.add(line, "local_id", "MISSING_VALUE", "local_id is required")
        elif len(value) > LOCAL_ID_MAX:
            report.add(line, "local_id", "FIELD_TOO_LONG", f"at most {LOCAL_ID_MAX} characters")
        elif not _LOCAL_ID.fullmatch(value):
            report.add(
                line,
                "local_id",
                "BAD_LOCAL_ID",
                "a local id is ASCII letters, digits, '-' and '_', starting with a letter or digit",
            )

    @staticmethod
    def _name(line: int, column: str, value: str, report: ErrorReport) -> None:
        if not value or value.isspace():
            report.add(line, column, "MISSING_VALUE", f"{column} is required")
        elif len(value) > NAME_MAX:
            report.add(line, column, "FIELD_TOO_LONG", f"at most {NAME_MAX} characters")

    @staticmethod
    def _kana(line: int, column: str, value: str, report: ErrorReport) -> str:
        """The name in katakana (hiragana is converted); reports anything else."""
        if _KATAKANA.fullmatch(value):
            if len(value) > NAME_MAX:
                report.add(line, column, "FIELD_TOO_LONG", f"at most {NAME_MAX} characters")
            return value
        if not value or value.isspace():
            report.add(line, column, "MISSING_VALUE", f"{column} is required")
            return value
        converted = value.translate(_HIRAGANA_TO_KATAKANA)
        if not _KATAKANA.fullmatch(converted):
            report.add(
                line,
                column,
                "BAD_KANA",
                "use katakana (or hiragana), the long-vowel mark ー and full-width spaces only",
            )
        elif len(converted) > NAME_MAX:
            report.add(line, column, "FIELD_TOO_LONG", f"at most {NAME_MAX} characters")
        return converted

    def _birth_date(self, line: int, value: str, report: ErrorReport) -> str:
        """ISO form of a ``YYYY-MM-DD`` (or ``YYYY/MM/DD``) birth date; reports bad ones."""
        if not value:
            report.add(line, "birth_date", "MISSING_VALUE", "birth_date is required")
            return value
        match = _DATE.fullmatch(value)
        try:
            parsed = date(*(int(g) for g in match.groups())) if match else None
        except ValueError:
            parsed = None
        if parsed is None:
            report.add(line, "birth_date", "BAD_DATE", f"{value!r} is not a date (YYYY-MM-DD)")
            return value
        if not EARLIEST_BIRTH_DATE <= parsed <= self._today:
            report.add(
                line,
                "birth_date",
                "DATE_OUT_OF_RANGE",
                f"a birth date lies between {EARLIEST_BIRTH_DATE} and today ({self._today})",
            )
            return value
        iso = parsed.isoformat()
        self._dates[value] = iso
        return iso

    @staticmethod
    def _bad_sex(line: int, value: str, report: ErrorReport) -> str:
        if not value:
            report.add(line, "sex", "MISSING_VALUE", "sex is required")
        else:
            report.add(line, "sex", "BAD_SEX", "sex is M, F or X (or ISO 5218: 1, 2, 9, 0)")
        return value

    def _my_number(self, line: int, value: str, report: ErrorReport) -> str | None:
        if is_valid_my_number(value):
            return self._hash(value)
        # Never echo the value: a My Number with one wrong digit is still personal data.
        report.add(
            line,
            "my_number",
            "BAD_MY_NUMBER",
            "not a My Number (12 digits with a valid check digit); the value is not repeated",
        )
        return None

    def _coupon(self, line: int, value: str, report: ErrorReport) -> None:
        if not _COUPON.fullmatch(value):
            report.add(line, "coupon_number", "BAD_COUPON_NUMBER", "a coupon number is 10 digits")
        elif self._damm and not is_valid_damm_coupon_number(value):
            report.add(
                line,
                "coupon_number",
                "BAD_COUPON_CHECK_DIGIT",
                f"{value} fails its Damm check digit (this municipality issues Damm numbers)",
            )

    @staticmethod
    def _protected(line: int, value: str, report: ErrorReport) -> bool:
        known = _PROTECTED.get(value.strip().lower())
        if known is None:
            report.add(
                line, "protected", "BAD_PROTECTED", "protected is true, false, 1, 0 or empty"
            )
            return False
        return known


def _municipality(session: Session, actor: Principal, municipality_code: str) -> Municipality:
    require_municipality(actor, municipality_code)
    municipality = session.get(Municipality, municipality_code)
    if municipality is None:
        raise NotFound("UNKNOWN_MUNICIPALITY", f"no municipality {municipality_code}")
    return municipality


def authorise_import(session: Session, *, actor: Principal, municipality_code: str) -> None:
    """Refuse an import the actor may not make, before its body is read."""
    _municipality(session, actor, municipality_code)


def import_residents(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    body: BinaryIO,
    settings: Settings,
    now: datetime,
) -> ImportResult:
    """Import a resident CSV file (open, binary, at its start) all or nothing, and commit.

    Raises ``403`` (not admin or this municipality), ``404 UNKNOWN_MUNICIPALITY``,
    ``422 EMPTY_FILE`` or ``422 INVALID_FILE`` (every bad row; nothing written).
    """
    municipality = _municipality(session, actor, municipality_code)
    # One import per municipality at a time: the clash checks hold until the commit.
    lock_keys(session, [f"residents-import:{municipality_code}"])
    report = ErrorReport(settings.max_reported_errors)
    records = CsvRecords.open(
        body, RESIDENT_COLUMNS, max_line_bytes=settings.max_csv_line_bytes, report=report
    )
    check = ResidentRowCheck(
        hmac_key=settings.my_number_hmac_key,
        today=now.astimezone(JST).date(),
        damm_coupons=municipality.coupon_format == "damm",
    )
    conn = session.connection()
    stage = sql.RESIDENT_STAGE
    stage.create(conn)
    stage.load(
        conn, (row for line, fields in records if (row := check(line, fields, report)) is not None)
    )
    stage.index(conn, "local_id", "coupon_number")
    _report_clashes(conn, municipality_code, report)
    report.raise_if_any()
    result = _apply(session, conn, actor, municipality_code, records.rows, now)
    stage.drop(conn)
    session.commit()
    return result


def _report_clashes(conn: Connection, municipality_code: str, report: ErrorReport) -> None:
    """Add the set-based problems: repeats within the file, coupon numbers taken."""
    stage = sql.RESIDENT_STAGE
    for column, code in (
        ("local_id", "DUPLICATE_LOCAL_ID"),
        ("coupon_number", "DUPLICATE_COUPON_NUMBER"),
    ):
        dups = duplicate_lines(conn, stage, column, limit=report.limit)
        repeats = (
            RowError(line, column, code, f"already on line {first}") for line, first in dups.lines
        )
        report.add_sorted(repeats, dups.total)
    taken = sql.coupons_taken(conn, municipality_code, limit=report.limit)
    report.add_sorted(
        (
            RowError(
                line,
                "coupon_number",
                "COUPON_NUMBER_TAKEN",
                f"{coupon} belongs to another resident of this municipality",
            )
            for line, coupon in taken.lines
        ),
        taken.total,
    )


def _apply(
    session: Session,
    conn: Connection,
    actor: Principal,
    municipality_code: str,
    rows: int,
    now: datetime,
) -> ImportResult:
    changes = sql.apply_changes(conn, municipality_code, now)
    matches = sql.match_pending_doses(conn, municipality_code, now, actor.credential_id)
    if matches:
        from vrs.domain.rules import reevaluate_series  # the rules use residents, not vice versa

        reevaluate_series(session, municipality_code, {m.coupon_number for m in matches}, now)
    result = ImportResult(
        rows=rows,
        created=changes.created,
        updated=changes.updated,
        unchanged=rows - changes.created - changes.updated,
        matched_pending_doses=len(matches),
    )
    audit.record(
        session,
        actor,
        "residents.import",
        now=now,
        municipality_code=municipality_code,
        count=rows,
        details={
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "matched_pending_doses": result.matched_pending_doses,
        },
    )
    return result


@dataclass(frozen=True)
class ResidentView:
    """A resident as the API shows it: never the My Number, only whether one is on file."""

    municipality_code: str
    local_id: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: date
    sex: str
    coupon_number: str | None
    address: str
    protected: bool
    has_my_number: bool
    created_at: datetime
    updated_at: datetime


def read_resident(
    session: Session, *, actor: Principal, municipality_code: str, local_id: str, now: datetime
) -> ResidentView:
    """One resident of a municipality (admin or that municipality); the read is audit-logged.

    Raises ``403``, ``404 UNKNOWN_MUNICIPALITY`` or ``404 RESIDENT_NOT_FOUND``.
    """
    _municipality(session, actor, municipality_code)
    row = session.get(Resident, (municipality_code, local_id))
    if row is None:
        raise NotFound("RESIDENT_NOT_FOUND", f"no resident {local_id} in {municipality_code}")
    audit.record(
        session,
        actor,
        "resident.read",
        now=now,
        municipality_code=municipality_code,
        subject=local_id,
        count=1,
    )
    session.commit()
    return ResidentView(
        municipality_code=row.municipality_code,
        local_id=row.local_id,
        family_name=row.family_name,
        given_name=row.given_name,
        family_name_kana=row.family_name_kana,
        given_name_kana=row.given_name_kana,
        birth_date=row.birth_date,
        sex=row.sex,
        coupon_number=row.coupon_number,
        address=row.address,
        protected=row.protected,
        has_my_number=row.my_number_hmac is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
