"""History look-up for residents who moved in: their doses recorded in other municipalities.

A municipality sends My Numbers, or local ids of its residents (whose My Number it holds
as a keyed hash), with a required purpose. Each is matched by ``my_number_hmac`` only — the
numbers are hashed on arrival and never stored, returned or logged — against residents of
*other* municipalities, and their non-voided doses are returned (dose number, date,
product, lot, recording municipality), nothing else about them.

Protected residents (DOMAIN.md: e.g. victims of domestic violence) are never disclosed by
this automatic path: a match whose record elsewhere is protected is answered ``withheld``,
without doses or municipality; such cases go through the municipalities' window procedure.

When the person is a resident of the asking municipality, the match is kept as a
``resident_link``: from then on the linked doses count for the flag rules (dose numbering,
intervals) of the resident's series here, and those series are re-evaluated at once.

Every look-up is audit-logged: who, how many, why (the purpose), what was found.

Statuses per entry: ``found``, ``not_found``, ``withheld``, ``invalid_my_number``,
``unknown_resident`` and ``no_my_number`` (local ids). Codes: ``MISSING_PURPOSE``,
``BAD_LOOKUP`` (neither or both lists), ``TOO_MANY_NUMBERS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Connection, bindparam, text
from sqlmodel import Session

from vrs.db.bulk import StagingTable
from vrs.db.concurrency import insert_ignoring_conflicts
from vrs.domain import audit
from vrs.domain.auth import Principal
from vrs.domain.corrections import _municipality, require_owner
from vrs.domain.errors import Unprocessable
from vrs.domain.mynumber import MyNumberHasher, is_valid_my_number
from vrs.domain.rules import LINK, reevaluate

MAX_NUMBERS = 100_000
_CHUNK = 10_000
MAX_PURPOSE = 500

_STAGE = StagingTable("history_lookup_stage", (("idx", "int"), ("hmac", "text")))


@dataclass(frozen=True)
class ForeignDose:
    municipality_code: str
    dose_number: int
    vaccinated_on: date
    product_code: str
    lot_number: str


@dataclass
class LookupEntry:
    index: int
    status: str
    local_id: str | None = None
    doses: list[ForeignDose] = field(default_factory=list)


@dataclass(frozen=True)
class LookupResult:
    entries: list[LookupEntry]
    found: int
    withheld: int
    doses: int
    linked: int


def check_purpose(purpose: object) -> str:
    if not isinstance(purpose, str) or not purpose.strip():
        raise Unprocessable("MISSING_PURPOSE", "say why you look the history up (purpose)")
    purpose = purpose.strip()
    if len(purpose) > MAX_PURPOSE or not purpose.isprintable():
        raise Unprocessable("MISSING_PURPOSE", "a purpose is 1-500 printable characters")
    return purpose


def lookup_history(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    purpose: object,
    my_numbers: Sequence[str] | None,
    local_ids: Sequence[str] | None,
    hmac_key: bytes,
    now: datetime,
) -> LookupResult:
    """Look the entries up (see the module docstring); audit-logged, commits."""
    require_owner(actor, municipality_code)
    why = check_purpose(purpose)
    _municipality(session, municipality_code)
    if (my_numbers is None) == (local_ids is None):
        raise Unprocessable("BAD_LOOKUP", "send either my_numbers or local_ids")
    asked = my_numbers if my_numbers is not None else local_ids
    assert asked is not None
    if len(asked) > MAX_NUMBERS:
        raise Unprocessable("TOO_MANY_NUMBERS", f"at most {MAX_NUMBERS} entries per look-up")
    conn = session.connection()
    entries = [LookupEntry(index=i, status="not_found") for i in range(len(asked))]
    staged: list[tuple[int, str]] = []
    if my_numbers is not None:
        hasher = MyNumberHasher(hmac_key)
        for i, number in enumerate(my_numbers):
            if isinstance(number, str) and is_valid_my_number(number):
                staged.append((i, hasher(number)))
            else:
                entries[i].status = "invalid_my_number"
    else:
        assert local_ids is not None
        staged = _hashes_of_local_ids(conn, municipality_code, local_ids, entries)
    _STAGE.create(conn)
    _STAGE.load(conn, staged)
    _STAGE.index(conn, "hmac")
    withheld, found_doses = _match(conn, municipality_code, entries)
    links = _links(conn, municipality_code)
    _STAGE.drop(conn)
    linked = _keep_links(session, municipality_code, links, actor, now)
    found = sum(1 for e in entries if e.status == "found")
    audit.record(
        session,
        actor,
        "history.lookup",
        now=now,
        municipality_code=municipality_code,
        count=len(asked),
        purpose=why,
        details={
            "by": "my_number" if my_numbers is not None else "local_id",
            "found": found,
            "withheld": withheld,
            "doses": found_doses,
            "linked": linked,
        },
    )
    session.commit()
    return LookupResult(entries, found=found, withheld=withheld, doses=found_doses, linked=linked)


def _hashes_of_local_ids(
    conn: Connection, municipality_code: str, local_ids: Sequence[str], entries: list[LookupEntry]
) -> list[tuple[int, str]]:
    hashes: dict[str, str | None] = {}
    wanted = sorted({str(x) for x in local_ids})
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            _HASHES, {"m": municipality_code, "ids": wanted[start : start + _CHUNK]}
        )
        hashes.update((lid, h) for lid, h in rows)
    staged = []
    for i, lid in enumerate(local_ids):
        entries[i].local_id = str(lid)
        if lid not in hashes:
            entries[i].status = "unknown_resident"
        elif hashes[lid] is None:
            entries[i].status = "no_my_number"
        else:
            staged.append((i, str(hashes[lid])))
    return staged


_HASHES = text(
    "SELECT local_id, my_number_hmac FROM resident "
    "WHERE municipality_code = :m AND local_id IN :ids"
).bindparams(bindparam("ids", expanding=True))

_MATCH = f"""
SELECT s.idx, r.municipality_code, r.protected, d.dose_number, d.vaccinated_on,
       d.product_code, d.lot_number
FROM {_STAGE.name} s
JOIN resident r ON r.my_number_hmac = s.hmac AND r.municipality_code <> :m
LEFT JOIN dose_record d
  ON d.municipality_code = r.municipality_code AND d.resident_local_id = r.local_id
 AND d.status <> 'voided' AND NOT r.protected
ORDER BY s.idx, d.vaccinated_on, d.dose_number
"""  # noqa: S608 - only constant names are formatted in

_LINKS = f"""
SELECT DISTINCT own.local_id, r.municipality_code, r.local_id, own.coupon_number
FROM {_STAGE.name} s
JOIN resident own ON own.municipality_code = :m AND own.my_number_hmac = s.hmac
JOIN resident r ON r.my_number_hmac = s.hmac AND r.municipality_code <> :m AND NOT r.protected
"""  # noqa: S608 - only constant names are formatted in


def _match(conn: Connection, municipality_code: str, entries: list[LookupEntry]) -> tuple[int, int]:
    withheld: set[int] = set()
    doses = 0
    for idx, other, protected, dose_number, day, product, lot in conn.execute(
        text(_MATCH), {"m": municipality_code}
    ):
        entry = entries[idx]
        if protected:
            withheld.add(idx)
            continue
        entry.status = "found" if entry.status != "withheld" else entry.status
        if dose_number is not None:
            if isinstance(day, str):  # SQLite keeps dates as text
                day = date.fromisoformat(day)
            entry.doses.append(ForeignDose(other, dose_number, day, product, lot))
            doses += 1
    for idx in withheld:  # any protected record elsewhere withholds the whole answer
        entries[idx].status = "withheld"
        doses -= len(entries[idx].doses)
        entries[idx].doses = []
    return len(withheld), doses


def _links(conn: Connection, municipality_code: str) -> list[tuple[str, str, str, str | None]]:
    return [tuple(r) for r in conn.execute(text(_LINKS), {"m": municipality_code})]


def _keep_links(
    session: Session,
    municipality_code: str,
    links: list[tuple[str, str, str, str | None]],
    actor: Principal,
    now: datetime,
) -> int:
    """Store the links not stored yet and re-evaluate the linked residents' series; the
    number of links the look-up found (new or known)."""
    if not links:
        return 0
    session.connection().execute(
        insert_ignoring_conflicts(session, LINK),
        [
            {
                "municipality_code": municipality_code,
                "resident_local_id": own,
                "source_municipality_code": other,
                "source_local_id": theirs,
                "linked_at": now,
                "linked_by": actor.credential_id,
            }
            for own, other, theirs, _ in links
        ],
    )
    coupons = [c for _, _, _, c in links if c is not None]
    if coupons:
        # A batch may link more residents than PostgreSQL's lock table holds series locks
        # for; the look-up's rows are read and written in this one transaction.
        reevaluate(session, municipality_code, coupons, now, locked=True)
    return len(links)
