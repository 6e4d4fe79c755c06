"""The set-based SQL of a resident import, over its staging table (portable SQL).

The domain layer (:mod:`vrs.domain.residents`) validates rows and stages them in
:data:`RESIDENT_STAGE`; these functions then find clashes, count and apply the changes, and
match pending dose records, each as one statement over the whole file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, column, insert, select, table, text, update

from vrs.db.bulk import StagingTable
from vrs.db.models import DoseRecord, DoseRecordEvent
from vrs.db.types import UTCDateTime

RESIDENT_STAGE = StagingTable(
    "resident_import_stage",
    (
        ("line", "int"),
        ("local_id", "text"),
        ("family_name", "text"),
        ("given_name", "text"),
        ("family_name_kana", "text"),
        ("given_name_kana", "text"),
        ("birth_date", "date"),
        ("sex", "text"),
        ("my_number_hmac", "text"),
        ("coupon_number", "text"),
        ("address", "text"),
        ("protected", "bool"),
    ),
)
#: The staged columns that are copied into ``resident`` (all but ``line``).
_DATA_COLUMNS = RESIDENT_STAGE.column_names[1:]
_STAGE = table(RESIDENT_STAGE.name, column("local_id"), column("coupon_number"))
_DOSE = DoseRecord.__table__  # type: ignore[attr-defined]
_EVENT = DoseRecordEvent.__table__  # type: ignore[attr-defined]


def _differs(a: str, b: str) -> str:
    return " OR ".join(f"{a}.{c} IS DISTINCT FROM {b}.{c}" for c in _DATA_COLUMNS[1:])


@dataclass(frozen=True)
class TakenCoupons:
    """Staged lines whose coupon number another stored resident keeps: ``(line, coupon)``."""

    lines: list[tuple[int, str]]
    total: int


def coupons_taken(conn: Connection, municipality_code: str, *, limit: int) -> TakenCoupons:
    """Lines giving a coupon number held by a resident the file does not mention.

    A holder that the file mentions gets its new coupon number (or none) in the same
    import, so swapping numbers between residents is no clash.
    """
    sql = text(
        f"""
        SELECT s.line, s.coupon_number, count(*) OVER () AS total
        FROM {RESIDENT_STAGE.name} s
        JOIN resident r
          ON r.municipality_code = :m AND r.coupon_number = s.coupon_number
         AND r.local_id <> s.local_id
        WHERE NOT EXISTS (SELECT 1 FROM {RESIDENT_STAGE.name} o WHERE o.local_id = r.local_id)
        ORDER BY s.line
        LIMIT :limit
        """  # noqa: S608 - only constant names are formatted in
    )
    found = conn.execute(sql, {"m": municipality_code, "limit": max(limit, 1)}).all()
    total = int(found[0].total) if found else 0
    return TakenCoupons([(int(r.line), str(r.coupon_number)) for r in found][:limit], total)


@dataclass(frozen=True)
class Changes:
    """Staged residents that were new, and stored ones that changed."""

    created: int
    updated: int


def _update_from_stage(conn: Connection, municipality_code: str, now: datetime, where: str) -> int:
    """Copy every staged field into the stored residents matching ``where``; their count."""
    sets = ", ".join(f"{c} = s.{c}" for c in _DATA_COLUMNS[1:])
    sql = text(
        f"""
        UPDATE resident SET {sets}, updated_at = :now
        FROM {RESIDENT_STAGE.name} AS s
        WHERE resident.municipality_code = :m AND resident.local_id = s.local_id AND ({where})
        """  # noqa: S608 - only constant names are formatted in
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    return int(conn.execute(sql, {"m": municipality_code, "now": now}).rowcount)


def apply_changes(conn: Connection, municipality_code: str, now: datetime) -> Changes:
    """Write the staged residents: update the changed ones, insert the new ones.

    ``uq_resident_coupon`` is checked row by row, so coupon numbers are moved in an order
    that never holds one number twice, even when residents swap numbers: first residents
    losing their number are updated, then numbers about to change are released, then
    every other change is written. Identical rows keep their ``updated_at``. Run it with
    the municipality's import lock held and after :func:`coupons_taken` found nothing.
    """
    losing = _update_from_stage(
        conn,
        municipality_code,
        now,
        "s.coupon_number IS NULL AND resident.coupon_number IS NOT NULL",
    )
    conn.execute(
        text(
            f"""
            UPDATE resident SET coupon_number = NULL
            FROM {RESIDENT_STAGE.name} AS s
            WHERE resident.municipality_code = :m AND resident.local_id = s.local_id
              AND resident.coupon_number <> s.coupon_number
            """  # noqa: S608 - only constant names are formatted in
        ),
        {"m": municipality_code},
    )
    changed = _update_from_stage(conn, municipality_code, now, _differs("resident", "s"))
    columns = ", ".join(_DATA_COLUMNS)
    created = conn.execute(
        text(
            f"""
            INSERT INTO resident (municipality_code, {columns}, created_at, updated_at)
            SELECT CAST(:m AS VARCHAR), {columns}, :now, :now FROM {RESIDENT_STAGE.name} AS s
            WHERE NOT EXISTS (SELECT 1 FROM resident r
                              WHERE r.municipality_code = :m AND r.local_id = s.local_id)
            """  # noqa: S608 - only constant names are formatted in
        ).bindparams(bindparam("now", type_=UTCDateTime())),
        {"m": municipality_code, "now": now},
    ).rowcount
    return Changes(created=int(created), updated=losing + changed)


@dataclass(frozen=True)
class PendingMatch:
    dose_record_id: uuid.UUID
    coupon_number: str
    local_id: str


def match_pending_doses(
    conn: Connection, municipality_code: str, now: datetime, actor: uuid.UUID | None
) -> list[PendingMatch]:
    """Give every pending dose record whose coupon number was imported its resident.

    Each matched record becomes ``recorded`` and gets a ``matched`` event. Records already
    matched keep their resident, even when that resident's coupon number changes.
    """
    pending = (_DOSE.c.municipality_code == municipality_code) & (_DOSE.c.status == "pending")
    found = conn.execute(
        select(_DOSE.c.id, _DOSE.c.coupon_number, _STAGE.c.local_id)
        .join(_STAGE, _STAGE.c.coupon_number == _DOSE.c.coupon_number)
        .where(pending)
    ).all()
    matches = [PendingMatch(r.id, r.coupon_number, r.local_id) for r in found]
    if not matches:
        return []
    holder = (
        select(_STAGE.c.local_id)
        .where(_STAGE.c.coupon_number == _DOSE.c.coupon_number)
        .scalar_subquery()
    )
    conn.execute(
        update(_DOSE)
        .where(pending, _DOSE.c.coupon_number.in_(select(_STAGE.c.coupon_number)))
        .values(resident_local_id=holder, status="recorded", updated_at=now)
    )
    conn.execute(
        insert(_EVENT),
        [
            {
                "municipality_code": municipality_code,
                "id": uuid.uuid4(),
                "dose_record_id": m.dose_record_id,
                "kind": "matched",
                "actor_credential_id": actor,
                "at": now,
                "reason": "resident import: the coupon number is now registered to a resident",
                "before": {"status": "pending", "resident_local_id": None},
                "after": {"status": "recorded", "resident_local_id": m.local_id},
            }
            for m in matches
        ],
    )
    return matches
