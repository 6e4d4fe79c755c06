"""Data-quality rules for dose records (DOMAIN.md's table), each with a stable code.

Reject rules raise a :class:`~vrs.domain.errors.DomainError` before anything is stored:
``MALFORMED_COUPON``, ``TICKET_NOT_VACCINATION``, ``BAD_MUNICIPALITY_CHECK_DIGIT`` and
``BAD_COUPON_CHECK_DIGIT`` (in :mod:`vrs.domain.coupons`), ``UNKNOWN_MUNICIPALITY``,
``UNKNOWN_PRODUCT``, ``UNKNOWN_SITE``, ``SITE_NOT_ENROLLED``, ``DEVICE_NOT_ENROLLED``,
``DATE_IN_FUTURE``, ``DATE_BEFORE_PROGRAMME``, ``BAD_SOURCE``, ``BAD_LOT``.

Flag rules (:class:`FlagRule`) look at a coupon's whole dose series and open a
``quality_flag`` row (severity ``flag``) on a stored record: the record stays, a person
checks it. :func:`reevaluate_series` recomputes them whenever a series changes. The
thresholds are rows with effective dates (:mod:`vrs.domain.reference`), not constants here.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from sqlalchemy import Table, and_, bindparam, exists, func, insert, select, update
from sqlmodel import Session

from vrs.db.bulk import insert_rows
from vrs.db.concurrency import lock_keys
from vrs.db.models import (
    DoseRecord,
    DoseRecordEvent,
    QualityFlag,
    Resident,
    ResidentLink,
    VaccineLot,
)
from vrs.domain.errors import Forbidden, Unprocessable
from vrs.domain.refcache import AgeRange, IntervalRule, ReferenceData, reference_data
from vrs.domain.reference import PROGRAMME_START

#: Japan has had no daylight saving time since 1951, so a fixed offset is exact.
JST = timezone(timedelta(hours=9), "JST")

SOURCES = frozenset({"qr", "ocr", "manual", "csv"})
MAX_LOT_LENGTH = 40

DOSE: Table = DoseRecord.__table__  # type: ignore[attr-defined]
EVENT: Table = DoseRecordEvent.__table__  # type: ignore[attr-defined]
FLAG: Table = QualityFlag.__table__  # type: ignore[attr-defined]
LOT: Table = VaccineLot.__table__  # type: ignore[attr-defined]
RESIDENT: Table = Resident.__table__  # type: ignore[attr-defined]
LINK: Table = ResidentLink.__table__  # type: ignore[attr-defined]

_INSERT_EVENT = insert(EVENT)

SYSTEM_RESOLVER = "system"
NO_LONGER_APPLIES = "rule no longer applies"
#: Coupons per statement when a caller re-evaluates many series at once.
_CHUNK = 2000


class FlagRule(StrEnum):
    """Codes of the automatic flags; the only flags :func:`reevaluate_series` opens or closes."""

    DOSE_DATE_ORDER = "DOSE_DATE_ORDER"
    DOSE_NUMBER_GAP = "DOSE_NUMBER_GAP"
    INTERVAL_TOO_SHORT = "INTERVAL_TOO_SHORT"
    LOT_UNKNOWN = "LOT_UNKNOWN"
    LOT_PRODUCT_MISMATCH = "LOT_PRODUCT_MISMATCH"
    LOT_EXPIRED = "LOT_EXPIRED"
    AGE_OUT_OF_RANGE = "AGE_OUT_OF_RANGE"


AUTOMATIC_CODES = frozenset(rule.value for rule in FlagRule)


# ---------------------------------------------------------------------------------------
# Calendar arithmetic


def add_months(start: date, months: int) -> date:
    """DOMAIN.md's "n months after": the same day n months later, or the 1st of the
    following month when that day does not exist (2021-08-31 + 1 month = 2021-10-01)."""
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    try:
        return date(year, month + 1, start.day)
    except ValueError:
        year, month = divmod(index + 1, 12)
        return date(year, month + 1, 1)


def age_in_months(birth_date: date, on: date) -> int:
    """Whole months of age on ``on``: the largest n with ``add_months(birth_date, n) <= on``."""
    months = (on.year - birth_date.year) * 12 + on.month - birth_date.month
    if add_months(birth_date, months) > on:
        months -= 1
    return months


def today_in_japan(now: datetime) -> date:
    """The calendar date in Japan at the aware instant ``now``."""
    return now.astimezone(JST).date()


# ---------------------------------------------------------------------------------------
# Reject rules


def check_vaccination_date(vaccinated_on: date, now: datetime) -> None:
    """``DATE_IN_FUTURE`` after today in Japan; ``DATE_BEFORE_PROGRAMME`` before 2021-02-17."""
    if vaccinated_on > today_in_japan(now):
        raise Unprocessable("DATE_IN_FUTURE", f"{vaccinated_on} is later than today in Japan")
    if vaccinated_on < PROGRAMME_START:
        raise Unprocessable(
            "DATE_BEFORE_PROGRAMME",
            f"{vaccinated_on} is before the first dose in Japan ({PROGRAMME_START})",
        )


def check_source(source: str) -> None:
    if source not in SOURCES:
        raise Unprocessable("BAD_SOURCE", "source is one of " + ", ".join(sorted(SOURCES)))


def check_lot(lot: str) -> str:
    """The lot number without surrounding spaces; ``BAD_LOT`` if empty, long or with
    control characters."""
    lot = lot.strip()
    if not lot or len(lot) > MAX_LOT_LENGTH or not lot.isprintable():
        raise Unprocessable("BAD_LOT", f"a lot number is 1-{MAX_LOT_LENGTH} printable characters")
    return lot


def check_product(product_code: str, ref: ReferenceData) -> None:
    if product_code not in ref.products:
        raise Unprocessable("UNKNOWN_PRODUCT", "the product code is not a known vaccine")


def check_municipality(municipality_code: str, coupon_format: str | None) -> str:
    """The municipality's coupon format; ``UNKNOWN_MUNICIPALITY`` when it is not registered."""
    if coupon_format is None:
        raise Unprocessable(
            "UNKNOWN_MUNICIPALITY", f"municipality {municipality_code} is not registered"
        )
    return coupon_format


def check_site(site_active: bool) -> None:
    """``UNKNOWN_SITE`` when the posted site is not registered or no longer active."""
    if not site_active:
        raise Unprocessable(
            "UNKNOWN_SITE", "site_code is not a registered, active vaccination site"
        )


def check_device(device_site_code: str | None) -> str:
    """The site the posting tablet is enrolled at; ``DEVICE_NOT_ENROLLED`` if none."""
    if device_site_code is None:
        raise Forbidden(
            "DEVICE_NOT_ENROLLED", "this tablet is not (or no longer) enrolled at any site"
        )
    return device_site_code


def check_site_enrollment(site_code: str, device_site_code: str) -> None:
    """``SITE_NOT_ENROLLED`` when a tablet posts for a site other than its own."""
    if site_code != device_site_code:
        raise Forbidden(
            "SITE_NOT_ENROLLED", f"this tablet is enrolled at another site than {site_code}"
        )


# ---------------------------------------------------------------------------------------
# Flag rules: pure functions over one coupon's series


@dataclass(frozen=True)
class SeriesDose:
    """A stored dose as the flag rules see it, with its lot and resident facts joined in."""

    id: uuid.UUID
    coupon_number: str
    dose_number: int
    vaccinated_on: date
    product_code: str
    lot_number: str
    #: Some lot row carries this number (for any product).
    lot_known: bool
    #: Expiry of the lot row for this number *and* this product; None when there is none.
    lot_expires_on: date | None
    birth_date: date | None
    #: For a pending record: the local id of the resident who now holds its coupon number.
    unmatched_holder: str | None = None
    #: A dose the resident got in another municipality before moving (found by a history
    #: look-up): it counts for the rules of this series but is not itself evaluated.
    external: bool = False

    @property
    def age_months(self) -> int | None:
        if self.birth_date is None:
            return None
        return age_in_months(self.birth_date, self.vaccinated_on)


@dataclass(frozen=True)
class Finding:
    rule: FlagRule
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def dose_date_order(dose: SeriesDose, series: Sequence[SeriesDose]) -> Finding | None:
    """A lower-numbered dose dated on or after this one, or a higher-numbered one on or before."""
    clashes = sorted(
        other.dose_number
        for other in series
        if (other.dose_number < dose.dose_number and other.vaccinated_on >= dose.vaccinated_on)
        or (other.dose_number > dose.dose_number and other.vaccinated_on <= dose.vaccinated_on)
    )
    if not clashes:
        return None
    return Finding(
        FlagRule.DOSE_DATE_ORDER,
        f"dose {dose.dose_number} is not dated between its neighbours (doses {clashes})",
        {"other_doses": clashes},
    )


def dose_number_gap(dose: SeriesDose, series: Sequence[SeriesDose]) -> Finding | None:
    """Dose N > 1 while dose N-1 of the coupon is not recorded."""
    if dose.dose_number <= 1 or any(o.dose_number == dose.dose_number - 1 for o in series):
        return None
    return Finding(
        FlagRule.DOSE_NUMBER_GAP,
        f"dose {dose.dose_number - 1} of this coupon is not recorded",
        {"missing_dose": dose.dose_number - 1},
    )


def _in_effect(effective_from: date, effective_until: date | None, on: date) -> bool:
    return effective_from <= on and (effective_until is None or on <= effective_until)


def _age_applies(rule: IntervalRule, age_months: int | None) -> bool:
    if not rule.has_age_bounds:
        return True
    if age_months is None:
        return False
    low, high = rule.age_min_months, rule.age_max_months
    return (low is None or low <= age_months) and (high is None or age_months <= high)


def applicable_interval_rule(
    rules: Iterable[IntervalRule], dose: SeriesDose
) -> IntervalRule | None:
    """The interval rule for ``dose``: product-specific beats general, then age-bounded beats
    unbounded, then the most recent ``effective_from`` wins."""
    candidates = [
        r
        for r in rules
        if r.dose_from <= dose.dose_number
        and (r.dose_to is None or dose.dose_number <= r.dose_to)
        and (r.product_code is None or r.product_code == dose.product_code)
        and _in_effect(r.effective_from, r.effective_until, dose.vaccinated_on)
        and _age_applies(r, dose.age_months)
    ]
    return max(
        candidates,
        key=lambda r: (r.product_code is not None, r.has_age_bounds, r.effective_from, r.id),
        default=None,
    )


def interval_too_short(
    dose: SeriesDose, series: Sequence[SeriesDose], ref: ReferenceData
) -> Finding | None:
    """Fewer calendar days (or months) since dose N-1 than the applicable rule allows."""
    previous = next((o for o in series if o.dose_number == dose.dose_number - 1), None)
    if previous is None or previous.vaccinated_on >= dose.vaccinated_on:
        return None  # a gap or a date-order flag says more than an interval flag would
    rule = applicable_interval_rule(ref.interval_rules, dose)
    if rule is None:
        return None
    earliest = previous.vaccinated_on
    if rule.min_days is not None:
        earliest = max(earliest, previous.vaccinated_on + timedelta(days=rule.min_days))
    if rule.min_months is not None:
        earliest = max(earliest, add_months(previous.vaccinated_on, rule.min_months))
    if dose.vaccinated_on >= earliest:
        return None
    days = (dose.vaccinated_on - previous.vaccinated_on).days
    return Finding(
        FlagRule.INTERVAL_TOO_SHORT,
        f"dose {dose.dose_number} came {days} days after dose {previous.dose_number}; "
        f"the earliest allowed date was {earliest} ({rule.note})",
        {
            "days": days,
            "earliest": earliest.isoformat(),
            "min_days": rule.min_days,
            "min_months": rule.min_months,
            "rule_id": rule.id,
        },
    )


def lot_problem(dose: SeriesDose) -> Finding | None:
    """An unknown lot, a lot of another product, or a lot expired before the dose date."""
    if not dose.lot_known:
        return Finding(FlagRule.LOT_UNKNOWN, f"lot {dose.lot_number} is not a known lot")
    if dose.lot_expires_on is None:
        return Finding(
            FlagRule.LOT_PRODUCT_MISMATCH,
            f"lot {dose.lot_number} belongs to another product than {dose.product_code}",
        )
    if dose.lot_expires_on < dose.vaccinated_on:
        return Finding(
            FlagRule.LOT_EXPIRED,
            f"lot {dose.lot_number} expired on {dose.lot_expires_on}",
            {"expires_on": dose.lot_expires_on.isoformat()},
        )
    return None


def age_out_of_range(dose: SeriesDose, ranges: Iterable[AgeRange]) -> Finding | None:
    """The resident's age at the dose is outside every range in effect for the product.

    Silent while the resident is unknown (a pending record) or no range is in effect.
    """
    age = dose.age_months
    if age is None:
        return None
    in_effect = [
        a
        for a in ranges
        if a.product_code == dose.product_code
        and _in_effect(a.effective_from, a.effective_until, dose.vaccinated_on)
    ]
    if not in_effect or any(
        a.min_age_months <= age and (a.max_age_months is None or age <= a.max_age_months)
        for a in in_effect
    ):
        return None
    return Finding(
        FlagRule.AGE_OUT_OF_RANGE,
        f"the resident was {age} months old; the product is not approved for that age",
        {"age_months": age},
    )


def evaluate_dose(
    dose: SeriesDose, series: Sequence[SeriesDose], ref: ReferenceData
) -> list[Finding]:
    """Every flag rule that applies to ``dose`` within its coupon's ``series``."""
    others = [o for o in series if o.id != dose.id]
    found = (
        dose_date_order(dose, others),
        dose_number_gap(dose, others),
        interval_too_short(dose, others, ref),
        lot_problem(dose),
        age_out_of_range(dose, ref.age_ranges),
    )
    return [f for f in found if f is not None]


def evaluate_series(
    doses: Iterable[SeriesDose], ref: ReferenceData
) -> dict[uuid.UUID, list[Finding]]:
    """Findings per dose id, for doses of any number of coupons."""
    by_coupon: dict[str, list[SeriesDose]] = defaultdict(list)
    for dose in doses:
        by_coupon[dose.coupon_number].append(dose)
    return {
        dose.id: evaluate_dose(dose, series, ref)
        for series in by_coupon.values()
        for dose in series
        if not dose.external
    }


# ---------------------------------------------------------------------------------------
# Re-evaluation against the database


@dataclass(frozen=True)
class OpenFlag:
    """An unresolved quality flag on a dose record."""

    id: uuid.UUID
    dose_record_id: uuid.UUID
    rule_code: str
    severity: str
    message: str
    created_at: datetime


def series_lock_key(municipality_code: str, coupon_number: str) -> str:
    """The lock every writer of one coupon's dose series holds (see ``lock_keys``)."""
    return f"dose-series:{municipality_code}:{coupon_number}"


def reevaluate_series(
    session: Session, municipality_code: str, coupon_numbers: Iterable[str], now: datetime
) -> None:
    """Recompute the automatic flags of every record of these coupons.

    Pending records whose coupon number now belongs to a resident are matched to that
    resident first (status ``recorded``, a ``matched`` event). Then the flags that now apply
    and are not open yet are opened, and open automatic flags that no longer apply are
    resolved (by ``system``, "rule no longer applies"). Conflict flags are never touched.
    Takes the coupons' series locks; the caller commits.
    """
    reevaluate(session, municipality_code, coupon_numbers, now)


def reevaluate(
    session: Session,
    municipality_code: str,
    coupon_numbers: Iterable[str],
    now: datetime,
    *,
    locked: bool = False,
) -> dict[uuid.UUID, list[OpenFlag]]:
    """:func:`reevaluate_series`, returning the open flags (of any kind) per record after it.

    ``locked``: the caller already holds the series locks of these coupons.
    """
    coupons = sorted(set(coupon_numbers))
    result: dict[uuid.UUID, list[OpenFlag]] = {}
    for start in range(0, len(coupons), _CHUNK):
        chunk = coupons[start : start + _CHUNK]
        if not locked:
            lock_keys(session, (series_lock_key(municipality_code, c) for c in chunk))
        result.update(_reevaluate_chunk(session, municipality_code, chunk, now))
    return result


def _reevaluate_chunk(
    session: Session, municipality_code: str, coupons: list[str], now: datetime
) -> dict[uuid.UUID, list[OpenFlag]]:
    series = load_series(session, municipality_code, coupons)
    series += load_linked_doses(session, municipality_code, coupons)
    open_flags = load_open_flags(session, municipality_code, coupons=coupons)
    return apply_series(session, municipality_code, series, open_flags, now)


def apply_series(
    session: Session,
    municipality_code: str,
    series: list[SeriesDose],
    open_flags: dict[uuid.UUID, list[OpenFlag]],
    now: datetime,
) -> dict[uuid.UUID, list[OpenFlag]]:
    """Match pending records, then open and resolve flags on loaded series (whole coupons);
    the open flags per record afterwards."""
    _match_pending(session, municipality_code, series, now)
    plan = plan_flag_changes(series, open_flags, reference_data(session), now)
    _resolve_flags(session, municipality_code, plan.to_resolve, now)
    _open_flags(session, municipality_code, plan.to_open, plan.opened)
    return plan.after


def reevaluate_selected(
    session: Session, municipality_code: str, coupons: Any, now: datetime, *, chunk: int = 20_000
) -> int:
    """:func:`reevaluate_series` for the coupons a subquery selects (a bulk import's staging
    table), reading each kind of fact in one streamed query instead of one per chunk of
    coupons; the caller holds whatever locks it needs. Returns how many records have open
    flags afterwards."""
    conn = session.connection()
    params = {"municipality": municipality_code}
    linked: dict[str, list[SeriesDose]] = defaultdict(list)
    for row in conn.execute(_linked_statement(coupons), params):
        linked[row[0]].append(external_dose(*row))
    open_flags: dict[uuid.UUID, list[OpenFlag]] = defaultdict(list)
    flags_stmt = select(*_FLAG_COLUMNS).where(
        FLAG.c.municipality_code == municipality_code,
        FLAG.c.resolved_at.is_(None),
        FLAG.c.dose_record_id.in_(
            select(DOSE.c.id).where(
                DOSE.c.municipality_code == municipality_code, DOSE.c.coupon_number.in_(coupons)
            )
        ),
    )
    for row in conn.execute(flags_stmt):
        open_flags[row.dose_record_id].append(OpenFlag(*row))
    rows = conn.execute(_series_statement(coupons).order_by(DOSE.c.coupon_number), params).all()
    flagged = 0
    start = 0
    while start < len(rows):
        end = min(start + chunk, len(rows))
        while end < len(rows) and rows[end].coupon_number == rows[end - 1].coupon_number:
            end += 1  # a coupon's series stays in one chunk
        series = [_series_dose_of(row) for row in rows[start:end]]
        for coupon in {d.coupon_number for d in series} & linked.keys():
            series += linked[coupon]
        mine = {d.id: open_flags[d.id] for d in series if d.id in open_flags}
        after = apply_series(session, municipality_code, series, mine, now)
        flagged += sum(1 for flags in after.values() if flags)
        start = end
    return flagged


@dataclass(frozen=True)
class FlagPlan:
    """What a series re-evaluation changes: flags to open and resolve, and the result."""

    to_open: list[tuple[uuid.UUID, Finding]]
    opened: list[OpenFlag]
    to_resolve: set[uuid.UUID]
    #: The open flags (of any kind) per record once the plan is carried out.
    after: dict[uuid.UUID, list[OpenFlag]]


def plan_flag_changes(
    series: Sequence[SeriesDose],
    open_flags: dict[uuid.UUID, list[OpenFlag]],
    ref: ReferenceData,
    now: datetime,
) -> FlagPlan:
    """Compare the findings on ``series`` with the flags open on it (pure; no I/O)."""
    findings = evaluate_series(series, ref)
    to_open: list[tuple[uuid.UUID, Finding]] = []
    for record_id, record_findings in findings.items():
        open_codes = {f.rule_code for f in open_flags.get(record_id, ())}
        to_open.extend((record_id, f) for f in record_findings if f.rule not in open_codes)
    to_resolve = {
        flag.id
        for record_id, flags in open_flags.items()
        for flag in flags
        if flag.severity == "flag"
        and flag.rule_code in AUTOMATIC_CODES
        and flag.rule_code not in {f.rule for f in findings.get(record_id, ())}
    }
    opened = [
        OpenFlag(
            id=uuid.uuid4(),
            dose_record_id=record_id,
            rule_code=finding.rule.value,
            severity="flag",
            message=finding.message[:500],
            created_at=now,
        )
        for record_id, finding in to_open
    ]
    after: dict[uuid.UUID, list[OpenFlag]] = defaultdict(list)
    for flags in open_flags.values():
        for flag in flags:
            if flag.id not in to_resolve:
                after[flag.dose_record_id].append(flag)
    for flag in opened:
        after[flag.dose_record_id].append(flag)
    return FlagPlan(to_open=to_open, opened=opened, to_resolve=to_resolve, after=dict(after))


def flag_rows(
    municipality_code: str, to_open: list[tuple[uuid.UUID, Finding]], opened: list[OpenFlag]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``quality_flag`` rows and their ``flagged`` events for newly opened flags."""
    flags = [
        {"municipality_code": municipality_code, **flag.__dict__, "details": finding.details}
        for flag, (_, finding) in zip(opened, to_open, strict=True)
    ]
    events = [
        {
            "municipality_code": municipality_code,
            "id": uuid.uuid4(),
            "dose_record_id": flag.dose_record_id,
            "kind": "flagged",
            "actor_credential_id": None,
            "at": flag.created_at,
            "reason": flag.message,
            "before": None,
            "after": {"rule_code": flag.rule_code, "flag_id": str(flag.id)},
        }
        for flag in opened
    ]
    return flags, events


def match_rows(
    municipality_code: str, series: Sequence[SeriesDose], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pending records whose coupon now has a holder: the updates and their ``matched`` events."""
    matches = [(d.id, d.unmatched_holder) for d in series if d.unmatched_holder is not None]
    updates = [{"record_id": rid, "local_id": lid} for rid, lid in matches]
    events = [
        {
            "municipality_code": municipality_code,
            "id": uuid.uuid4(),
            "dose_record_id": rid,
            "kind": "matched",
            "actor_credential_id": None,
            "at": now,
            "reason": "the coupon number is now registered to a resident",
            "before": None,
            "after": {"resident_local_id": lid},
        }
        for rid, lid in matches
    ]
    return updates, events


def _series_statement(coupons: Any = None) -> Any:
    """The series facts of the doses of ``coupons`` (an expanding parameter by default, or a
    subquery of coupon numbers)."""
    if coupons is None:
        coupons = bindparam("coupons", expanding=True)
    any_lot = LOT.alias("any_lot")
    own = RESIDENT.alias("own_resident")
    holder = RESIDENT.alias("coupon_holder")
    lot_known = exists().where(any_lot.c.lot_number == DOSE.c.lot_number)
    joined = (
        DOSE.outerjoin(
            LOT,
            and_(LOT.c.lot_number == DOSE.c.lot_number, LOT.c.product_code == DOSE.c.product_code),
        )
        .outerjoin(
            own,
            and_(
                own.c.municipality_code == DOSE.c.municipality_code,
                own.c.local_id == DOSE.c.resident_local_id,
            ),
        )
        .outerjoin(
            holder,
            and_(
                DOSE.c.resident_local_id.is_(None),
                holder.c.municipality_code == DOSE.c.municipality_code,
                holder.c.coupon_number == DOSE.c.coupon_number,
            ),
        )
    )
    return (
        select(
            DOSE.c.id,
            DOSE.c.coupon_number,
            DOSE.c.dose_number,
            DOSE.c.vaccinated_on,
            DOSE.c.product_code,
            DOSE.c.lot_number,
            lot_known.label("lot_known"),
            LOT.c.expires_on,
            func.coalesce(own.c.birth_date, holder.c.birth_date).label("birth_date"),
            holder.c.local_id.label("holder_id"),
        )
        .select_from(joined)
        .where(
            DOSE.c.municipality_code == bindparam("municipality"),
            DOSE.c.coupon_number.in_(coupons),
            DOSE.c.status != "voided",
        )
    )


# Built once: the hot path should not pay for constructing statements on every call.
_SERIES = _series_statement()


def load_series(session: Session, municipality_code: str, coupons: list[str]) -> list[SeriesDose]:
    """The non-voided doses of these coupons with their lot and resident facts.

    The resident is the record's own, or for a pending record whoever holds the coupon now.
    """
    params = {"municipality": municipality_code, "coupons": coupons}
    return [_series_dose_of(row) for row in session.connection().execute(_SERIES, params)]


def _series_dose_of(row: Any) -> SeriesDose:
    return SeriesDose(
        id=row.id,
        coupon_number=row.coupon_number,
        dose_number=row.dose_number,
        vaccinated_on=row.vaccinated_on,
        product_code=row.product_code,
        lot_number=row.lot_number,
        lot_known=bool(row.lot_known),
        lot_expires_on=row.expires_on,
        birth_date=row.birth_date,
        unmatched_holder=row.holder_id,
    )


def _linked_statement(coupons: Any = None) -> Any:
    if coupons is None:
        coupons = bindparam("coupons", expanding=True)
    holder = RESIDENT.alias("holder")
    return (
        select(
            holder.c.coupon_number,
            DOSE.c.id,
            DOSE.c.dose_number,
            DOSE.c.vaccinated_on,
            DOSE.c.product_code,
            DOSE.c.lot_number,
        )
        .select_from(
            holder.join(
                LINK,
                and_(
                    LINK.c.municipality_code == holder.c.municipality_code,
                    LINK.c.resident_local_id == holder.c.local_id,
                ),
            ).join(
                DOSE,
                and_(
                    DOSE.c.municipality_code == LINK.c.source_municipality_code,
                    DOSE.c.resident_local_id == LINK.c.source_local_id,
                ),
            )
        )
        .where(
            holder.c.municipality_code == bindparam("municipality"),
            holder.c.coupon_number.in_(coupons),
            DOSE.c.status != "voided",
        )
    )


_LINKED = _linked_statement()


def external_dose(
    coupon_number: str,
    record_id: uuid.UUID,
    dose_number: int,
    vaccinated_on: date,
    product_code: str,
    lot_number: str,
) -> SeriesDose:
    """A dose of another municipality's record, as context for a local series."""
    return SeriesDose(
        id=record_id,
        coupon_number=coupon_number,
        dose_number=dose_number,
        vaccinated_on=vaccinated_on,
        product_code=product_code,
        lot_number=lot_number,
        lot_known=True,
        lot_expires_on=None,
        birth_date=None,
        external=True,
    )


def load_linked_doses(
    session: Session, municipality_code: str, coupons: list[str]
) -> list[SeriesDose]:
    """Doses recorded elsewhere for the holders of these coupons, linked by a history
    look-up (:mod:`vrs.domain.history`), each under the local coupon it counts for."""
    params = {"municipality": municipality_code, "coupons": coupons}
    return [external_dose(*row) for row in session.connection().execute(_LINKED, params)]


def _match_pending(
    session: Session, municipality_code: str, series: list[SeriesDose], now: datetime
) -> None:
    """Give pending records whose coupon now belongs to a resident that resident."""
    updates, events = match_rows(municipality_code, series, now)
    if not updates:
        return
    session.execute(
        update(DOSE)
        .where(
            DOSE.c.municipality_code == municipality_code,
            DOSE.c.id == bindparam("record_id"),
            DOSE.c.resident_local_id.is_(None),
        )
        .values(resident_local_id=bindparam("local_id"), status="recorded", updated_at=now),
        updates,
    )
    session.connection().execute(_INSERT_EVENT, events)


_FLAG_COLUMNS = (
    FLAG.c.id,
    FLAG.c.dose_record_id,
    FLAG.c.rule_code,
    FLAG.c.severity,
    FLAG.c.message,
    FLAG.c.created_at,
)
_OPEN = (FLAG.c.municipality_code == bindparam("municipality"), FLAG.c.resolved_at.is_(None))
_OPEN_FLAGS_OF_RECORDS = select(*_FLAG_COLUMNS).where(
    *_OPEN, FLAG.c.dose_record_id.in_(bindparam("ids", expanding=True))
)
_OPEN_FLAGS_OF_COUPONS = select(*_FLAG_COLUMNS).where(
    *_OPEN,
    FLAG.c.dose_record_id.in_(
        select(DOSE.c.id).where(
            DOSE.c.municipality_code == bindparam("municipality"),
            DOSE.c.coupon_number.in_(bindparam("coupons", expanding=True)),
        )
    ),
)


def load_open_flags(
    session: Session,
    municipality_code: str,
    record_ids: Iterable[uuid.UUID] = (),
    *,
    coupons: Sequence[str] = (),
) -> dict[uuid.UUID, list[OpenFlag]]:
    """Unresolved flags of the given records, or of every record of the given coupons."""
    params: dict[str, Any] = {"municipality": municipality_code}
    if coupons:
        stmt, params["coupons"] = _OPEN_FLAGS_OF_COUPONS, list(coupons)
    else:
        stmt, params["ids"] = _OPEN_FLAGS_OF_RECORDS, list(record_ids)
        if not params["ids"]:
            return {}
    flags: dict[uuid.UUID, list[OpenFlag]] = defaultdict(list)
    for row in session.connection().execute(stmt, params):
        flags[row.dose_record_id].append(OpenFlag(*row))
    return dict(flags)


def _resolve_flags(
    session: Session, municipality_code: str, flag_ids: set[uuid.UUID], now: datetime
) -> None:
    if not flag_ids:
        return
    session.execute(
        update(FLAG)
        .where(FLAG.c.municipality_code == municipality_code, FLAG.c.id.in_(flag_ids))
        .values(resolved_at=now, resolved_by=SYSTEM_RESOLVER, resolution=NO_LONGER_APPLIES)
    )


def _open_flags(
    session: Session,
    municipality_code: str,
    findings: list[tuple[uuid.UUID, Finding]],
    opened: list[OpenFlag],
) -> None:
    if not findings:
        return
    flags, events = flag_rows(municipality_code, findings, opened)
    # A bulk import's re-evaluation can open thousands: copied, not inserted one by one.
    insert_rows(session.connection(), FLAG, flags)
    insert_rows(session.connection(), EVENT, events)
