"""Dose-record ingest on PostgreSQL through the asynchronous fast path.

The rules are the ones :mod:`vrs.domain.doses` applies, called from the same functions;
only the storage differs: two round trips of set-based statements
(:mod:`vrs.db.pg_ingest`) instead of a dozen ORM-sized ones, and no thread hand-off. The
tablet's device, the sites and the municipalities come from a short-lived cache
(:class:`PlaceCache`), so a deactivation takes effect within its time to live.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from vrs.db.concurrency import key_id
from vrs.db.pg_ingest import new_dose, read_again, store_and_read, write_changes
from vrs.domain.auth import Principal, Role, require_role
from vrs.domain.coupons import CouponLine, parse_coupon_line
from vrs.domain.doses import (
    _SITE_CODE,
    MAX_BATCH,
    BatchItem,
    DoseSubmission,
    IngestResult,
    Outcome,
    _check,
    _Context,
    _Dose,
    _first_of_each_key,
    _StoredRows,
    _Verdict,
    _view,
    conflict_key,
    conflict_rows,
    disputed,
    parse_submission,
)
from vrs.domain.errors import DomainError, Unprocessable
from vrs.domain.refcache import ReferenceData
from vrs.domain.rules import (
    NO_LONGER_APPLIES,
    SYSTEM_RESOLVER,
    OpenFlag,
    SeriesDose,
    check_device,
    external_dose,
    flag_rows,
    match_rows,
    plan_flag_changes,
    series_lock_key,
)

PLACES = """
SELECT 'd', site_code, '' FROM device WHERE id = %(device)s AND active
UNION ALL SELECT 's', code, '' FROM site WHERE code = ANY(%(sites)s) AND active
UNION ALL SELECT 'm', code, coupon_format FROM municipality WHERE code = ANY(%(municipalities)s)
"""


@dataclass
class PlaceCache:
    """Devices, active sites and municipalities' coupon formats for ``ttl`` seconds.

    Absence is cached too (briefly, with the rest), so a flood of posts for an unknown site
    does not become a flood of queries.
    """

    ttl: float = 10.0
    #: Seconds on a monotonic clock; tests pass their own.
    clock: Callable[[], float] = time.monotonic
    devices: dict[uuid.UUID, tuple[float, str | None]] = field(default_factory=dict)
    sites: dict[str, tuple[float, bool]] = field(default_factory=dict)
    municipalities: dict[str, tuple[float, str | None]] = field(default_factory=dict)

    def _fresh(self, entry: tuple[float, Any] | None, now: float) -> bool:
        return entry is not None and entry[0] > now

    async def context(
        self,
        conn: AsyncConnection[Any],
        ref: ReferenceData,
        device_id: uuid.UUID | None,
        sites: set[str],
        municipalities: set[str],
    ) -> _Context:
        now = self.clock()
        missing_sites = [s for s in sites if not self._fresh(self.sites.get(s), now)]
        missing_m = [m for m in municipalities if not self._fresh(self.municipalities.get(m), now)]
        device_known = device_id is None or self._fresh(self.devices.get(device_id), now)
        if missing_sites or missing_m or not device_known:
            await self._load(conn, device_id, missing_sites, missing_m, now)
        context = _Context(ref=ref)
        if device_id is not None:
            context.device_site = self.devices[device_id][1]
        context.active_sites = {s for s in sites if self.sites[s][1]}
        context.coupon_formats = {
            m: fmt for m in municipalities if (fmt := self.municipalities[m][1]) is not None
        }
        return context

    async def _load(
        self,
        conn: AsyncConnection[Any],
        device_id: uuid.UUID | None,
        sites: list[str],
        municipalities: list[str],
        now: float,
    ) -> None:
        found: dict[str, dict[str, str]] = defaultdict(dict)
        cur = await conn.execute(
            PLACES, {"device": device_id, "sites": sites, "municipalities": municipalities}
        )
        for kind, key, value in await cur.fetchall():
            found[kind][key] = value
        # End the read's transaction (the ingest opens its own). Not a rollback: psycopg
        # answers one by dropping every prepared statement of the connection.
        await conn.commit()
        expires = now + self.ttl
        if device_id is not None:
            self.devices[device_id] = (expires, next(iter(found["d"]), None))
        for s in sites:
            self.sites[s] = (expires, s in found["s"])
        for m in municipalities:
            self.municipalities[m] = (expires, found["m"].get(m))
        if len(self.sites) + len(self.municipalities) + len(self.devices) > 100_000:
            self.sites.clear()
            self.municipalities.clear()
            self.devices.clear()


RefLoader = Callable[[], Awaitable[ReferenceData]]


@dataclass(frozen=True)
class Submission:
    """One caller's records: a batch post, or a single post waiting to be grouped."""

    principal: Principal
    records: Sequence[object]
    now: datetime


async def ingest_many(
    conn: AsyncConnection[Any],
    submissions: Sequence[Submission],
    *,
    places: PlaceCache,
    reference: RefLoader,
) -> list[list[BatchItem] | DomainError]:
    """Store several callers' records in one transaction; commits on ``conn``.

    Each submission is checked on its own, exactly as :func:`vrs.domain.doses.ingest_batch`
    checks a batch: it gets its per-record answers, or the :class:`DomainError` that refuses
    it whole (``ROLE_NOT_ALLOWED``, ``BATCH_TOO_LARGE``, ``DEVICE_NOT_ENROLLED``). Records
    of every submission are then stored together, so concurrent single posts share the two
    round trips of one set-based write.
    """
    ref = await reference()
    answers: list[dict[int, BatchItem] | DomainError] = []
    doses: list[_Dose] = []
    #: global index of a dose -> (submission number, index within it, its principal)
    owners: dict[int, tuple[int, int, Principal]] = {}
    for number, sub in enumerate(submissions):
        try:
            mine, checked = await _check_submission(conn, sub, ref, places, len(owners))
        except DomainError as exc:
            answers.append(exc)
            continue
        answers.append(mine)
        for local_index, dose in checked:
            owners[dose.index] = (number, local_index, sub.principal)
            doses.append(dose)
    if doses:
        # The connection is not in autocommit: its first statement opens the transaction
        # inside the first pipeline, and the commit rides in the second.
        now = max(sub.now for sub in submissions)
        try:
            stored = await _store(conn, {i: o[2] for i, o in owners.items()}, doses, ref, now)
        except BaseException:
            await conn.rollback()
            raise
        for item in stored:
            number, local_index, _ = owners[item.index]
            held = answers[number]
            assert isinstance(held, dict)
            held[local_index] = BatchItem(local_index, item.result, item.error)
    return [
        a if isinstance(a, DomainError) else [a[i] for i in range(len(sub.records))]
        for a, sub in zip(answers, submissions, strict=True)
    ]


async def _check_submission(
    conn: AsyncConnection[Any],
    sub: Submission,
    ref: ReferenceData,
    places: PlaceCache,
    first_index: int,
) -> tuple[dict[int, BatchItem], list[tuple[int, _Dose]]]:
    """The reject rules for one submission: answers for refused records, and the rest
    (numbered from ``first_index`` on, so that several submissions share one numbering)."""
    require_role(sub.principal, Role.SITE)
    if len(sub.records) > MAX_BATCH:
        raise Unprocessable(
            "BATCH_TOO_LARGE",
            f"a batch holds at most {MAX_BATCH} records, not {len(sub.records)}",
        )
    answers: dict[int, BatchItem] = {}
    parsed: list[tuple[int, DoseSubmission, CouponLine]] = []
    for index, raw in enumerate(sub.records):
        try:
            submission = parse_submission(raw)
            parsed.append((index, submission, parse_coupon_line(submission.coupon)))
        except DomainError as exc:
            answers[index] = BatchItem(index, error=exc)
    checked: list[tuple[int, _Dose]] = []
    if sub.records:  # the tablet is checked even when no record parsed
        sites = {s.site_code for _, s, _ in parsed if _SITE_CODE.fullmatch(s.site_code)}
        context = await places.context(
            conn,
            ref,
            sub.principal.device_id,
            sites,
            {line.municipality_code for *_, line in parsed},
        )
        check_device(context.device_site)
        for index, submission, line in parsed:
            try:
                dose = _check(first_index + len(checked), submission, line, context, sub.now)
            except DomainError as exc:
                answers[index] = BatchItem(index, error=exc)
            else:
                checked.append((index, dose))
    return answers, checked


async def ingest_batch(
    conn: AsyncConnection[Any],
    principal: Principal,
    records: Sequence[object],
    now: datetime,
    *,
    places: PlaceCache,
    reference: RefLoader,
) -> list[BatchItem]:
    """:func:`vrs.domain.doses.ingest_batch` on PostgreSQL; commits on ``conn``."""
    [result] = await ingest_many(
        conn, [Submission(principal, records, now)], places=places, reference=reference
    )
    if isinstance(result, DomainError):
        raise result
    return result


async def ingest(
    conn: AsyncConnection[Any],
    principal: Principal,
    record_in: object,
    now: datetime,
    *,
    places: PlaceCache,
    reference: RefLoader,
) -> IngestResult:
    """One record: :class:`IngestResult`, or the record's :class:`DomainError` raised."""
    [item] = await ingest_batch(
        conn, principal, [record_in], now, places=places, reference=reference
    )
    if item.error is not None:
        raise item.error
    assert item.result is not None
    return item.result


def _series_dose(row: dict[str, Any]) -> SeriesDose:
    return SeriesDose(
        id=row["id"],
        coupon_number=row["coupon_number"],
        dose_number=row["dose_number"],
        vaccinated_on=row["vaccinated_on"],
        product_code=row["product_code"],
        lot_number=row["lot_number"],
        lot_known=bool(row["lot_known"]),
        lot_expires_on=row["lot_expires_on"],
        birth_date=row["birth_date"],
        unmatched_holder=row["holder_id"],
    )


async def _store(
    conn: AsyncConnection[Any],
    principals: dict[int, Principal],
    doses: list[_Dose],
    ref: ReferenceData,
    now: datetime,
) -> list[BatchItem]:
    firsts = _first_of_each_key(doses)
    new = [
        new_dose(
            d.line.municipality_code,
            d.line.coupon_number,
            d.line.dose_number,
            d.submission.vaccinated_on,
            d.submission.product,
            d.lot,
            d.submission.site_code,
            d.submission.source,
            d.submission.client_record_id,
            d.submission.doctor_name,
            principals[d.index].device_id,
            principals[d.index].credential_id,
        )
        for d in firsts
    ]
    series_keys = sorted({d.natural_key[:2] for d in doses})
    client_ids = sorted({d.client_key for d in doses})
    rows, linked = await store_and_read(
        conn,
        lock_keys=[key_id(series_lock_key(m, c)) for m, c in series_keys],
        rows=new,
        series=series_keys,
        client_ids=client_ids,
        now=now,
    )
    stored = _StoredRows(rows)
    if not all(stored.knows(d) for d in doses):
        # A client id taken by another series' transaction after this one's snapshot:
        # read the records again rather than answer RETRY.
        rows = await read_again(conn, rows, series=series_keys, client_ids=client_ids)
        stored = _StoredRows(rows)
    by_client = stored.by_client
    created = {
        d.index: row
        for d in firsts
        if (row := by_client.get(d.client_key)) is not None and row["inserted"]
    }
    others = [d for d in doses if d.index not in created]
    verdicts: dict[int, _Verdict] = {d.index: stored.verdict(d) for d in others}

    open_flags: dict[uuid.UUID, list[OpenFlag]] = defaultdict(list)
    seen_conflicts: set[tuple[Any, ...]] = set()
    for row in rows:
        for f in row["open_flags"] or ():
            flag = OpenFlag(
                uuid.UUID(f["id"]),
                row["id"],
                f["rule_code"],
                f["severity"],
                f["message"],
                datetime.fromisoformat(f["created_at"]),
            )
            open_flags[row["id"]].append(flag)
            if flag.severity == "conflict":
                seen_conflicts.add(conflict_key(row["id"], flag.rule_code, f["details"]))
    conflict_flags: list[dict[str, Any]] = []
    conflict_events: list[dict[str, Any]] = []
    for dose, verdict in disputed(others, verdicts):
        new_flags, new_events = conflict_rows(
            principals[dose.index], [(dose, verdict)], seen_conflicts, now
        )
        conflict_flags.extend(new_flags)
        conflict_events.extend(new_events)

    touched = {(r["municipality_code"], r["coupon_number"]) for r in created.values()}
    matches: list[dict[str, Any]] = []
    resolve: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = list(conflict_flags)
    events: list[dict[str, Any]] = list(conflict_events)
    after: dict[uuid.UUID, list[OpenFlag]] = dict(open_flags)
    for municipality_code in sorted({m for m, _ in touched}):
        series = [
            _series_dose(r)
            for r in rows
            if r["municipality_code"] == municipality_code
            and (municipality_code, r["coupon_number"]) in touched
            and r["status"] != "voided"
        ]
        ids = {d.id for d in series}
        series += [
            external_dose(
                r["coupon_number"],
                r["id"],
                r["dose_number"],
                r["vaccinated_on"],
                r["product_code"],
                r["lot_number"],
            )
            for r in linked
            if r["municipality_code"] == municipality_code
            and (municipality_code, r["coupon_number"]) in touched
        ]
        mine = {rid: fl for rid, fl in open_flags.items() if rid in ids}
        updates, match_events = match_rows(municipality_code, series, now)
        matches.extend({**u, "municipality_code": municipality_code, "now": now} for u in updates)
        events.extend(match_events)
        plan = plan_flag_changes(series, mine, ref, now)
        resolve.extend(
            {
                "municipality_code": municipality_code,
                "id": fid,
                "now": now,
                "by": SYSTEM_RESOLVER,
                "why": NO_LONGER_APPLIES,
            }
            for fid in plan.to_resolve
        )
        new_flags, new_events = flag_rows(municipality_code, plan.to_open, plan.opened)
        flags.extend(new_flags)
        events.extend(new_events)
        for rid in ids:
            after[rid] = plan.after.get(rid, [])
    for f in conflict_flags:  # the answer lists the conflict flags this call opened
        after.setdefault(f["dose_record_id"], []).append(
            OpenFlag(
                f["id"],
                f["dose_record_id"],
                f["rule_code"],
                f["severity"],
                f["message"],
                f["created_at"],
            )
        )
    await write_changes(conn, matches=matches, resolve=resolve, flags=flags, events=events)

    matched = {u["record_id"]: u["local_id"] for u in matches}
    items: list[BatchItem] = []
    for index, row in created.items():
        items.append(
            BatchItem(
                index,
                IngestResult(
                    Outcome.CREATED, _view(_matched(row, matched), after.get(row["id"], ()))
                ),
            )
        )
    for index, verdict in verdicts.items():
        held = verdict.row
        view = None if held is None else _view(_matched(held, matched), after.get(held["id"], ()))
        if verdict.code is None and view is not None:
            items.append(BatchItem(index, IngestResult(Outcome.EXISTING, view)))
        else:
            items.append(BatchItem(index, error=verdict.error(view)))
    return items


def _matched(row: Mapping[str, Any], matched: dict[uuid.UUID, str]) -> Mapping[str, Any]:
    local_id = matched.get(row["id"])
    if local_id is None:
        return row
    return {**row, "resident_local_id": local_id, "status": "recorded"}
