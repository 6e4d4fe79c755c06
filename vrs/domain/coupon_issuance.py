"""Issuing coupon numbers: a 9-digit serial per municipality and its Damm check digit.

:func:`issue_coupons` gives residents who hold no coupon number the next numbers of their
municipality's sequence (``coupon_sequence``). Serials only grow, so a number is never issued
twice, not even after its holder moved away or was given another; a number that is already
in use in the municipality (a legacy number from an earlier system, imported with the
residents, or typed on a pending dose record) is skipped. Issuers of one municipality run one
at a time (the sequence row's lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), and the
resident import's lock is held too, so no import can hand out the same number meanwhile.

Codes: ``UNKNOWN_RESIDENT`` (422, with ``local_ids``), ``BAD_LIMIT``, ``TOO_MANY_RESIDENTS``,
``COUPON_SERIALS_EXHAUSTED`` (409).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlmodel import Session

from vrs.db.concurrency import insert_ignoring_conflicts, lock_keys
from vrs.db.models import CouponSequence
from vrs.domain import audit
from vrs.domain.auth import Principal
from vrs.domain.checkdigits import make_damm_coupon_number
from vrs.domain.corrections import _municipality, require_owner
from vrs.domain.errors import Conflict, Unprocessable
from vrs.domain.rules import DOSE, RESIDENT

SEQUENCE: Table = CouponSequence.__table__  # type: ignore[attr-defined]
MAX_ISSUE = 100_000
LAST_SERIAL = 999_999_999
_CHUNK = 5000


@dataclass(frozen=True)
class IssuedCoupon:
    local_id: str
    coupon_number: str


@dataclass(frozen=True)
class Issuance:
    issued: list[IssuedCoupon]
    #: Local ids asked for that hold a coupon number already (left as they are).
    already_issued: list[str]
    #: Residents of the municipality still without a coupon number.
    remaining: int


def issue_coupons(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    local_ids: Sequence[str] | None,
    limit: int,
    now: datetime,
) -> Issuance:
    """Issue coupon numbers to the named residents, or to up to ``limit`` residents without
    one (by local id); audit-logged, commits."""
    require_owner(actor, municipality_code)
    _municipality(session, municipality_code)
    if not 1 <= limit <= MAX_ISSUE:
        raise Unprocessable("BAD_LIMIT", f"limit is 1-{MAX_ISSUE}")
    if local_ids is not None and len(local_ids) > MAX_ISSUE:
        raise Unprocessable("TOO_MANY_RESIDENTS", f"at most {MAX_ISSUE} residents per call")
    lock_keys(session, [f"residents-import:{municipality_code}"])
    conn = session.connection()
    targets, already = _targets(conn, municipality_code, local_ids, limit)
    numbers = allocate(session, municipality_code, len(targets), now)
    issued = [IssuedCoupon(lid, number) for lid, number in zip(targets, numbers, strict=True)]
    if issued:
        conn.execute(
            update(RESIDENT)
            .where(
                RESIDENT.c.municipality_code == municipality_code,
                RESIDENT.c.local_id == bindparam("lid"),
                RESIDENT.c.coupon_number.is_(None),
            )
            .values(coupon_number=bindparam("number"), updated_at=now),
            [{"lid": c.local_id, "number": c.coupon_number} for c in issued],
        )
    remaining = conn.execute(
        select(func.count()).where(
            RESIDENT.c.municipality_code == municipality_code, RESIDENT.c.coupon_number.is_(None)
        )
    ).scalar_one()
    audit.record(
        session,
        actor,
        "coupons.issue",
        now=now,
        municipality_code=municipality_code,
        count=len(issued),
        details={"already_issued": len(already), "remaining": int(remaining)},
    )
    session.commit()
    return Issuance(issued=issued, already_issued=already, remaining=int(remaining))


def _targets(
    conn: Connection, municipality_code: str, local_ids: Sequence[str] | None, limit: int
) -> tuple[list[str], list[str]]:
    """The residents to issue to, in local-id order, and those asked for that have a number."""
    mine = RESIDENT.c.municipality_code == municipality_code
    if local_ids is None:
        rows = conn.execute(
            select(RESIDENT.c.local_id)
            .where(mine, RESIDENT.c.coupon_number.is_(None))
            .order_by(RESIDENT.c.local_id)
            .limit(limit)
        )
        return [r[0] for r in rows], []
    wanted = sorted(set(local_ids))
    found: dict[str, str | None] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = conn.execute(
            select(RESIDENT.c.local_id, RESIDENT.c.coupon_number).where(
                mine, RESIDENT.c.local_id.in_(chunk)
            )
        )
        found.update((lid, number) for lid, number in rows)
    missing = [lid for lid in wanted if lid not in found]
    if missing:
        raise Unprocessable(
            "UNKNOWN_RESIDENT",
            f"{len(missing)} local id(s) are not residents of {municipality_code}",
            local_ids=missing[:100],
        )
    return [lid for lid in wanted if found[lid] is None], [lid for lid in wanted if found[lid]]


def allocate(session: Session, municipality_code: str, count: int, now: datetime) -> list[str]:
    """``count`` new coupon numbers of the municipality, from its sequence, skipping numbers
    in use; the sequence moves past every serial handed out or skipped."""
    if count == 0:
        return []
    conn = session.connection()
    conn.execute(
        insert_ignoring_conflicts(session, SEQUENCE),
        {"municipality_code": municipality_code, "next_serial": 1, "issued": 0, "updated_at": now},
    )
    numbers: list[str] = []
    while len(numbers) < count:
        want = count - len(numbers)
        end = conn.execute(
            update(SEQUENCE)
            .where(SEQUENCE.c.municipality_code == municipality_code)
            .values(
                next_serial=SEQUENCE.c.next_serial + want,
                issued=SEQUENCE.c.issued + want,
                updated_at=now,
            )
            .returning(SEQUENCE.c.next_serial)
        ).scalar_one()
        if end - 1 > LAST_SERIAL:
            raise Conflict(
                "COUPON_SERIALS_EXHAUSTED",
                f"municipality {municipality_code} has issued every 9-digit serial",
            )
        candidates = [make_damm_coupon_number(s) for s in range(end - want, end)]
        taken = _in_use(conn, municipality_code, candidates)
        numbers.extend(c for c in candidates if c not in taken)
    return numbers


def _in_use(conn: Connection, municipality_code: str, numbers: list[str]) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(numbers), _CHUNK):
        chunk = numbers[start : start + _CHUNK]
        for table in (RESIDENT, DOSE):
            rows = conn.execute(
                select(table.c.coupon_number)
                .where(
                    table.c.municipality_code == municipality_code,
                    table.c.coupon_number.in_(chunk),
                )
                .distinct()
            )
            taken.update(r[0] for r in rows)
    return taken
