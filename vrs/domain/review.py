"""The municipality's review queue: open flags and conflicts, deciding them, record history.

:func:`review_queue` lists the open ``quality_flag`` rows of a municipality with the record
each sits on, what the rule saw (the flag's ``details``: the clashing doses, the interval,
a conflicting upload's content, ...) and the other doses of the coupon, filtered by rule,
severity, site and vaccination date. :func:`resolve_flag` decides one:

- a conflict (another upload disagreed with the stored record): ``keep_stored`` closes it,
  ``take_incoming`` makes the upload's content the record's next version (a correction,
  with its certificates revoked). Either way both versions stay in the history: the
  ``conflict`` event holds the upload, the ``conflict_resolved`` event both sides;
- a data-quality flag: ``dismiss`` (checked, the record is right) closes it with the reason.

:func:`record_history` returns a record's events, oldest first.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, select, update
from sqlmodel import Session

from vrs.domain import audit
from vrs.domain.auth import Principal
from vrs.domain.corrections import (
    Change,
    _event,
    _municipality,
    _row,
    apply_correction,
    check_reason,
    parse_record_id,
    record_view,
    require_owner,
    require_reader,
    resolver,
)
from vrs.domain.doses import _DATE, DoseRecordView, _view
from vrs.domain.errors import Conflict, NotFound, Unprocessable
from vrs.domain.rules import DOSE, EVENT, FLAG, load_open_flags

MAX_PAGE = 500
ACTIONS = {"conflict": ("keep_stored", "take_incoming"), "flag": ("dismiss",)}


@dataclass(frozen=True)
class ReviewFilter:
    rules: tuple[str, ...] = ()
    severity: str | None = None
    site_code: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    limit: int = 100
    offset: int = 0


def parse_filter(
    *,
    rule: Sequence[str] = (),
    severity: str | None = None,
    site: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> ReviewFilter:
    """Check the query parameters of the review queue (``BAD_FILTER`` with ``field``)."""
    rules = tuple(sorted({r.strip().upper() for r in rule if r.strip()}))
    if len(rules) > 20 or any(not r.replace("_", "").isalnum() or len(r) > 40 for r in rules):
        raise Unprocessable("BAD_FILTER", "rule: a rule code such as INTERVAL_TOO_SHORT")
    if severity is not None and severity not in ACTIONS:
        raise Unprocessable("BAD_FILTER", "severity is flag or conflict", field="severity")
    if site is not None and not (len(site) == 10 and site.isascii() and site.isdigit()):
        raise Unprocessable("BAD_FILTER", "site is a 10-digit site code", field="site")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise Unprocessable("BAD_FILTER", f"limit is 1-{MAX_PAGE}, offset 0 or more")
    return ReviewFilter(
        rules=rules,
        severity=severity,
        site_code=site,
        date_from=_day("from", date_from),
        date_to=_day("to", date_to),
        limit=limit,
        offset=offset,
    )


def _day(name: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise Unprocessable("BAD_FILTER", f"{name} is a date YYYY-MM-DD", field=name) from None


@dataclass(frozen=True)
class SeriesEntry:
    id: uuid.UUID
    dose_number: int
    vaccinated_on: date
    product_code: str
    lot_number: str
    site_code: str
    status: str


@dataclass(frozen=True)
class ReviewItem:
    flag_id: uuid.UUID
    rule_code: str
    severity: str
    message: str
    #: What the rule saw (its findings, or for a conflict the upload that disagreed).
    details: dict[str, Any]
    flagged_at: datetime
    record: DoseRecordView
    #: The coupon's other doses, by dose number.
    series: tuple[SeriesEntry, ...]


@dataclass(frozen=True)
class ReviewPage:
    total: int
    items: list[ReviewItem]


def review_queue(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    filters: ReviewFilter,
    now: datetime,
) -> ReviewPage:
    """Open flags of the municipality, oldest first, a page at a time; audit-logged."""
    require_reader(actor, municipality_code)
    _municipality(session, municipality_code)
    joined = FLAG.join(
        DOSE, and_(DOSE.c.municipality_code == FLAG.c.municipality_code,
                   DOSE.c.id == FLAG.c.dose_record_id)
    )  # fmt: skip
    where = [FLAG.c.municipality_code == municipality_code, FLAG.c.resolved_at.is_(None)]
    if filters.rules:
        where.append(FLAG.c.rule_code.in_(filters.rules))
    if filters.severity:
        where.append(FLAG.c.severity == filters.severity)
    if filters.site_code:
        where.append(DOSE.c.site_code == filters.site_code)
    if filters.date_from:
        where.append(DOSE.c.vaccinated_on >= filters.date_from)
    if filters.date_to:
        where.append(DOSE.c.vaccinated_on <= filters.date_to)
    conn = session.connection()
    total = conn.execute(select(func.count()).select_from(joined).where(*where)).scalar_one()
    rows = conn.execute(
        select(
            FLAG.c.id.label("flag_id"),
            FLAG.c.rule_code.label("flag_rule_code"),
            FLAG.c.severity.label("flag_severity"),
            FLAG.c.message.label("flag_message"),
            FLAG.c.details.label("flag_details"),
            FLAG.c.created_at.label("flag_created_at"),
            *DOSE.c,
        )
        .select_from(joined)
        .where(*where)
        .order_by(FLAG.c.created_at, FLAG.c.id)
        .limit(filters.limit)
        .offset(filters.offset)
    ).mappings()
    found = [dict(r) for r in rows]
    flags = load_open_flags(session, municipality_code, {r["id"] for r in found})
    series = _series(session, municipality_code, {r["coupon_number"] for r in found})
    items = [
        ReviewItem(
            flag_id=r["flag_id"],
            rule_code=r["flag_rule_code"],
            severity=r["flag_severity"],
            message=r["flag_message"],
            details=r["flag_details"] or {},
            flagged_at=r["flag_created_at"],
            record=_view(r, flags.get(r["id"], ())),
            series=tuple(s for s in series.get(r["coupon_number"], ()) if s.id != r["id"]),
        )
        for r in found
    ]
    audit.record(
        session,
        actor,
        "review.list",
        now=now,
        municipality_code=municipality_code,
        count=len(items),
        details={"total": total, "rules": list(filters.rules), "site": filters.site_code},
    )
    session.commit()
    return ReviewPage(total=int(total), items=items)


def _series(
    session: Session, municipality_code: str, coupons: set[str]
) -> dict[str, list[SeriesEntry]]:
    if not coupons:
        return {}
    rows = session.connection().execute(
        select(
            DOSE.c.coupon_number,
            DOSE.c.id,
            DOSE.c.dose_number,
            DOSE.c.vaccinated_on,
            DOSE.c.product_code,
            DOSE.c.lot_number,
            DOSE.c.site_code,
            DOSE.c.status,
        )
        .where(DOSE.c.municipality_code == municipality_code, DOSE.c.coupon_number.in_(coupons))
        .order_by(DOSE.c.coupon_number, DOSE.c.dose_number)
    )
    out: dict[str, list[SeriesEntry]] = defaultdict(list)
    for coupon, *rest in rows:
        out[coupon].append(SeriesEntry(*rest))
    return out


# ---------------------------------------------------------------------------------------
# Deciding a flag


def _flag(session: Session, municipality_code: str, flag_id: str) -> dict[str, Any]:
    try:
        fid = uuid.UUID(flag_id)
    except ValueError:
        raise NotFound("FLAG_NOT_FOUND", f"no flag {flag_id!r}") from None
    row = (
        session.connection()
        .execute(
            select(*FLAG.c).where(FLAG.c.municipality_code == municipality_code, FLAG.c.id == fid)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("FLAG_NOT_FOUND", f"no flag {flag_id} in {municipality_code}")
    return dict(row)


def resolve_flag(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    flag_id: str,
    action: str,
    reason: object,
    now: datetime,
) -> Change:
    """Decide one open flag (see the module docstring); commits.

    Codes: ``FLAG_NOT_FOUND``, ``FLAG_RESOLVED`` (409), ``BAD_ACTION``, ``MISSING_REASON``,
    and for ``take_incoming`` those of a correction.
    """
    require_owner(actor, municipality_code)
    why = check_reason(reason)
    _municipality(session, municipality_code)
    flag = _flag(session, municipality_code, flag_id)
    allowed = ACTIONS.get(flag["severity"], ())
    if action not in allowed:
        raise Unprocessable(
            "BAD_ACTION", f"a {flag['severity']} is resolved by {' or '.join(allowed)}"
        )
    if flag["resolved_at"] is not None:
        raise Conflict("FLAG_RESOLVED", "this flag was resolved already")
    record_id = flag["dose_record_id"]
    stored = _row(session, municipality_code, record_id)
    change = Change(record_view(session, municipality_code, record_id))
    incoming = (flag["details"] or {}).get("incoming") or {}
    if action == "take_incoming":
        new = {
            "vaccinated_on": date.fromisoformat(incoming["vaccinated_on"]),
            "product_code": incoming["product"],
            "lot_number": incoming["lot"],
            "site_code": incoming["site_code"],
        }
        change = apply_correction(
            session,
            actor=actor,
            municipality_code=municipality_code,
            record_id=record_id,
            version=stored["version"],
            new=new,
            reason=why,
            kind="corrected",
            now=now,
            extra={"from_conflict": str(flag["id"])},
        )
    _close(session, actor, municipality_code, flag, action, why, now)
    if flag["severity"] == "conflict":
        _event(
            session,
            actor,
            municipality_code,
            record_id,
            "conflict_resolved",
            now,
            why,
            before={
                "stored": {
                    "vaccinated_on": stored["vaccinated_on"].isoformat(),
                    "product": stored["product_code"],
                    "lot": stored["lot_number"],
                    "site_code": stored["site_code"],
                    "version": stored["version"],
                },
                "incoming": incoming,
            },
            after={"action": action, "flag_id": str(flag["id"]), "version": change.record.version},
        )
    audit.record(
        session,
        actor,
        "review.resolve",
        now=now,
        municipality_code=municipality_code,
        subject=str(flag["id"]),
        count=1,
        purpose=why,
        details={"action": action, "rule_code": flag["rule_code"], "record": str(record_id)},
    )
    view = record_view(session, municipality_code, record_id)
    session.commit()
    return Change(view, change.revoked_certificates)


def _close(
    session: Session,
    actor: Principal,
    municipality_code: str,
    flag: dict[str, Any],
    action: str,
    reason: str,
    now: datetime,
) -> None:
    closed = session.connection().execute(
        update(FLAG)
        .where(
            FLAG.c.municipality_code == municipality_code,
            FLAG.c.id == flag["id"],
            FLAG.c.resolved_at.is_(None),
        )
        .values(
            resolved_at=now, resolved_by=resolver(actor), resolution=f"{action}: {reason}"[:500]
        )
    )
    if closed.rowcount != 1:
        raise Conflict("FLAG_RESOLVED", "this flag was resolved already")


# ---------------------------------------------------------------------------------------
# History


#: Events written in one transaction share their time; within it, causes come before effects.
_KIND_ORDER = case(
    {
        kind: rank
        for rank, kind in enumerate(
            (
                "created",
                "matched",
                "conflict",
                "corrected",
                "voided",
                "verified",
                "conflict_resolved",
            )
        )
    },
    value=EVENT.c.kind,
    else_=99,
)


@dataclass(frozen=True)
class EventView:
    id: uuid.UUID
    kind: str
    at: datetime
    actor_credential_id: uuid.UUID | None
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record_history(
    session: Session, *, actor: Principal, municipality_code: str, record_id: str, now: datetime
) -> tuple[DoseRecordView, list[EventView]]:
    """A record and its events, oldest first (admin or the municipality); audit-logged."""
    require_reader(actor, municipality_code)
    _municipality(session, municipality_code)
    rid = parse_record_id(record_id)
    view = record_view(session, municipality_code, rid)
    rows = session.connection().execute(
        select(
            EVENT.c.id,
            EVENT.c.kind,
            EVENT.c.at,
            EVENT.c.actor_credential_id,
            EVENT.c.reason,
            EVENT.c.before,
            EVENT.c.after,
        )
        .where(EVENT.c.municipality_code == municipality_code, EVENT.c.dose_record_id == rid)
        .order_by(EVENT.c.at, _KIND_ORDER, EVENT.c.id)
    )
    events = [EventView(*r) for r in rows]
    audit.record(
        session,
        actor,
        "dose_record.history",
        now=now,
        municipality_code=municipality_code,
        subject=str(rid),
        count=len(events),
    )
    session.commit()
    return view, events
