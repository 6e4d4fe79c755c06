"""PostgreSQL statements of the ingest fast path (psycopg 3, asynchronous, set-based).

One call stores any number of records in two round trips: the first (pipelined) takes the
series locks and runs :data:`STORE`, one statement that inserts the new records with their
``created`` events and reads back every affected series with its open flags; the second
writes whatever the rules decided and commits. A unique-key race with another series'
transaction costs a third (:data:`STORE_GUARDED`, after a rollback). The SQLAlchemy path
in :mod:`vrs.domain.doses` does the same work portably and is the cross-check in the tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row

LOCK = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%(keys)s::bigint[]) AS t(k)"

# Record ids in the UUID version 7 layout: the statement's millisecond clock, then random
# bits. Ids that rise with time are appended to the right edge of the primary-key indexes
# instead of landing on a random page of them (docs/benchmarks.md: about a fifth of the
# insert's cost).
_TIME_ORDERED_ID = """encode(overlay(uuid_send(gen_random_uuid())
    placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
    FROM 1 FOR 6), 'hex')::uuid"""

#: The record columns every read of the fast path returns (as the API's view needs them).
_COLUMNS = (
    "municipality_code, id, coupon_number, dose_number, resident_local_id, vaccinated_on, "
    "product_code, lot_number, site_code, device_id, source, client_record_id, doctor_name, "
    "status, locked, version, registered_at"
)


def _columns(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _COLUMNS.split(","))


# What the flag rules need to know of a stored record besides its columns: the lot's facts,
# the birth date of the resident it belongs to (or of the one now holding its coupon, for a
# pending record) and its open flags.
_LOT_FACTS = """
       EXISTS (SELECT 1 FROM vaccine_lot a WHERE a.lot_number = {d}.lot_number) AS lot_known,
       (SELECT l.expires_on FROM vaccine_lot l
        WHERE l.lot_number = {d}.lot_number AND l.product_code = {d}.product_code)
           AS lot_expires_on"""

# Every look-up below is a correlated subquery or a LATERAL join on a unique index. The
# statements run with generic plans, which know nothing of the JSON documents' sizes; given a
# plain join, the planner hashed the whole resident table for a one-record post (27 ms on
# 50,000 residents, and growing with the population). ``OFFSET 0`` keeps the planner from
# flattening a LATERAL subquery back into such a join.
_FACTS_OF_STORED = (
    _LOT_FACTS.format(d="d")
    + """,
       COALESCE(
           (SELECT own.birth_date FROM resident own
            WHERE own.municipality_code = d.municipality_code
              AND own.local_id = d.resident_local_id),
           holder.birth_date) AS birth_date,
       holder.local_id AS holder_id,
       (SELECT json_agg(json_build_object(
                   'id', f.id, 'rule_code', f.rule_code, 'severity', f.severity,
                   'message', f.message, 'created_at', f.created_at, 'details', f.details))
        FROM quality_flag f
        WHERE f.municipality_code = d.municipality_code AND f.dose_record_id = d.id
          AND f.resolved_at IS NULL) AS open_flags"""
)

_HOLDER = """
LEFT JOIN LATERAL (
    SELECT r.local_id, r.birth_date FROM resident r
    WHERE d.resident_local_id IS NULL AND r.municipality_code = d.municipality_code
      AND r.coupon_number = d.coupon_number OFFSET 0) AS holder ON true
"""

# The stored records of the posted series, and those holding a posted client id.
_BY_SERIES = """SELECT d.municipality_code, d.id
    FROM json_to_recordset(%(series)s::json) AS k(m text, c text)
    CROSS JOIN LATERAL (
        SELECT d.municipality_code, d.id FROM dose_record d
        WHERE d.municipality_code = k.m AND d.coupon_number = k.c OFFSET 0) AS d"""
_BY_CLIENT = """SELECT d.municipality_code, d.id
    FROM {clients}
    CROSS JOIN LATERAL (
        SELECT d.municipality_code, d.id FROM dose_record d
        WHERE d.municipality_code = k.m AND d.client_record_id = k.cid OFFSET 0) AS d"""
_CLIENTS = "json_to_recordset(%(clients)s::json) AS k(m text, cid uuid)"
_CLIENTS_NOT_INSERTED = f"""(
        SELECT k.m, k.cid FROM {_CLIENTS}
        WHERE NOT EXISTS (
            SELECT 1 FROM ins WHERE ins.municipality_code = k.m AND ins.client_record_id = k.cid)
    ) AS k"""

# The stored records named by the (municipality_code, id) rows of ``keys``, with their facts.
_STORED = (
    f"SELECT {_columns('d')}, false AS inserted, {_FACTS_OF_STORED}"
    + """
FROM {keys}
CROSS JOIN LATERAL (
    SELECT * FROM dose_record d
    WHERE d.municipality_code = {keys}.municipality_code AND d.id = {keys}.id OFFSET 0) AS d
"""
    + _HOLDER
)

_NEW_ROWS = """
WITH t AS (
    SELECT t.*, r.local_id AS resident, r.birth_date
    FROM json_to_recordset(%(rows)s::json) AS t(
        m text, c text, n int, d date, p text, lot text, site text, src text, cid uuid,
        doc text, device uuid, actor uuid)
    LEFT JOIN LATERAL (
        SELECT r.local_id, r.birth_date FROM resident r
        WHERE r.municipality_code = t.m AND r.coupon_number = t.c OFFSET 0) AS r ON true
)"""

_INSERT = f"""
    INSERT INTO dose_record (
        municipality_code, id, coupon_number, dose_number, resident_local_id, vaccinated_on,
        product_code, lot_number, site_code, device_id, source, client_record_id, doctor_name,
        status, locked, version, registered_by, registered_at, updated_at)
    SELECT t.m, {_TIME_ORDERED_ID}, t.c, t.n, t.resident, t.d, t.p, t.lot, t.site, t.device,
           t.src, t.cid, t.doc, CASE WHEN t.resident IS NULL THEN 'pending' ELSE 'recorded' END,
           false, 1, t.actor, %(now)s::timestamptz, %(now)s::timestamptz
    FROM t"""

_EVENTS_AND_ANSWER = f"""
), ev AS (
    INSERT INTO dose_record_event (
        municipality_code, id, dose_record_id, kind, actor_credential_id, at, after)
    SELECT ins.municipality_code, {_TIME_ORDERED_ID}, ins.id, 'created', ins.registered_by,
           %(now)s::timestamptz,
           json_build_object(
               'vaccinated_on', ins.vaccinated_on, 'product', ins.product_code,
               'lot', ins.lot_number, 'site_code', ins.site_code, 'source', ins.source,
               'doctor_name', ins.doctor_name, 'client_record_id', ins.client_record_id,
               'device_id', ins.device_id)
    FROM ins
), prior AS (
    {{prior}}
)
SELECT {_columns("ins")}, true AS inserted, {_LOT_FACTS.format(d="ins")},
       t.birth_date, NULL::text AS holder_id, NULL::json AS open_flags
FROM ins JOIN t ON t.m = ins.municipality_code AND t.cid = ins.client_record_id
UNION ALL
{_STORED.format(keys="prior")}
"""

# One statement stores the new records with their ``created`` events and reads back what
# the rules need: the new rows (from RETURNING) and, from the snapshot the statement started
# with, the stored records of every posted series and those holding a posted client id. The
# series locks, taken by the statement before, make that snapshot complete for the series,
# so a record whose dose or client id is already stored is simply not inserted: no
# ``ON CONFLICT`` probe of every unique index, and no speculative insertion (an extra WAL
# record per row). A client id committed by another series' transaction while this one runs
# is the one thing the snapshot can miss; the insert then fails on the unique key and the
# caller runs :data:`STORE_GUARDED` instead.
# The rows travel as one JSON document: dumping a single string costs psycopg far less than
# a dozen typed arrays of a thousand elements each (docs/benchmarks.md).
STORE = (
    _NEW_ROWS
    + f""", series_rows AS MATERIALIZED (
    SELECT d.municipality_code, d.id, d.coupon_number, d.dose_number
    FROM json_to_recordset(%(series)s::json) AS k(m text, c text)
    CROSS JOIN LATERAL (
        SELECT d.municipality_code, d.id, d.coupon_number, d.dose_number FROM dose_record d
        WHERE d.municipality_code = k.m AND d.coupon_number = k.c OFFSET 0) AS d
), client_rows AS MATERIALIZED (
    SELECT d.municipality_code, d.id, d.client_record_id
    FROM {_CLIENTS}
    CROSS JOIN LATERAL (
        SELECT d.municipality_code, d.id, d.client_record_id FROM dose_record d
        WHERE d.municipality_code = k.m AND d.client_record_id = k.cid OFFSET 0) AS d
), ins AS ({_INSERT}
    -- NOT IN over columns that are never null: a hashed subplan, whatever the estimates (a
    -- NOT EXISTS was planned as a scan of the CTE for every row).
    WHERE (t.m, t.c, t.n) NOT IN (
        SELECT s.municipality_code, s.coupon_number, s.dose_number FROM series_rows s)
      AND (t.m, t.cid) NOT IN (SELECT s.municipality_code, s.client_record_id FROM client_rows s)
    RETURNING {_COLUMNS}, registered_by"""
    + _EVENTS_AND_ANSWER.format(
        prior="SELECT municipality_code, id FROM series_rows\n"
        "    UNION SELECT municipality_code, id FROM client_rows"
    )
)

# :data:`STORE` made safe against any concurrent insert: ``ON CONFLICT DO NOTHING``, and the
# stored records of client ids it did not insert read after the insert.
STORE_GUARDED = (
    _NEW_ROWS
    + f""", ins AS ({_INSERT}
    ON CONFLICT DO NOTHING
    RETURNING {_COLUMNS}, registered_by"""
    + _EVENTS_AND_ANSWER.format(
        prior=f"{_BY_SERIES}\n    UNION\n    {_BY_CLIENT.format(clients=_CLIENTS_NOT_INSERTED)}"
    )
)

_AFFECTED = f"""
affected AS (
    {_BY_SERIES}
    UNION
    {_BY_CLIENT.format(clients=_CLIENTS)}
)
"""

# The same rows as :data:`STORE` reads, from a fresh snapshot, for the rare call where a
# record was neither inserted nor found in the statement's own snapshot.
SERIES = f"""
WITH {_AFFECTED}
{_STORED.format(keys="affected")}
"""

# Doses recorded elsewhere for the holders of the series' coupons, linked by a history look-up.
LINKED = """
SELECT k.m AS municipality_code, k.c AS coupon_number, d.id, d.dose_number, d.vaccinated_on,
       d.product_code, d.lot_number
FROM json_to_recordset(%(series)s::json) AS k(m text, c text)
CROSS JOIN LATERAL (
    SELECT r.local_id FROM resident r
    WHERE r.municipality_code = k.m AND r.coupon_number = k.c OFFSET 0) AS r
CROSS JOIN LATERAL (
    SELECT h.source_municipality_code, h.source_local_id FROM resident_link h
    WHERE h.municipality_code = k.m AND h.resident_local_id = r.local_id OFFSET 0) AS h
CROSS JOIN LATERAL (
    SELECT d.id, d.dose_number, d.vaccinated_on, d.product_code, d.lot_number
    FROM dose_record d
    WHERE d.municipality_code = h.source_municipality_code
      AND d.resident_local_id = h.source_local_id AND d.status <> 'voided' OFFSET 0) AS d
"""

MATCH = """
UPDATE dose_record SET resident_local_id = %(local_id)s, status = 'recorded', updated_at = %(now)s
WHERE municipality_code = %(municipality_code)s AND id = %(record_id)s
  AND resident_local_id IS NULL
"""

RESOLVE = """
UPDATE quality_flag SET resolved_at = %(now)s, resolved_by = %(by)s, resolution = %(why)s
WHERE municipality_code = %(municipality_code)s AND id = %(id)s AND resolved_at IS NULL
"""

INSERT_FLAGS = """
INSERT INTO quality_flag (municipality_code, id, dose_record_id, rule_code, severity, message,
                          details, created_at)
SELECT m, id, rid, rule, sev, msg, details::json, at
FROM unnest(%(m)s::text[], %(id)s::uuid[], %(rid)s::uuid[], %(rule)s::text[], %(sev)s::text[],
            %(msg)s::text[], %(details)s::text[], %(at)s::timestamptz[])
     AS t(m, id, rid, rule, sev, msg, details, at)
"""

INSERT_EVENTS = """
INSERT INTO dose_record_event (municipality_code, id, dose_record_id, kind, actor_credential_id,
                               at, reason, before, after)
SELECT m, id, rid, kind, actor, at, reason, before::json, after::json
FROM unnest(%(m)s::text[], %(id)s::uuid[], %(rid)s::uuid[], %(kind)s::text[],
            %(actor)s::uuid[], %(at)s::timestamptz[], %(reason)s::text[], %(before)s::text[],
            %(after)s::text[])
     AS t(m, id, rid, kind, actor, at, reason, before, after)
"""


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def flag_arrays(flags: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        "m": [f["municipality_code"] for f in flags],
        "id": [f["id"] for f in flags],
        "rid": [f["dose_record_id"] for f in flags],
        "rule": [f["rule_code"] for f in flags],
        "sev": [f["severity"] for f in flags],
        "msg": [f["message"] for f in flags],
        "details": [_json(f["details"]) for f in flags],
        "at": [f["created_at"] for f in flags],
    }


def event_arrays(events: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        "m": [e["municipality_code"] for e in events],
        "id": [e["id"] for e in events],
        "rid": [e["dose_record_id"] for e in events],
        "kind": [e["kind"] for e in events],
        "actor": [e.get("actor_credential_id") for e in events],
        "at": [e["at"] for e in events],
        "reason": [e.get("reason") for e in events],
        "before": [_json(e.get("before")) for e in events],
        "after": [_json(e.get("after")) for e in events],
    }


def new_dose(
    m: str,
    c: str,
    n: int,
    d: date,
    p: str,
    lot: str,
    site: str,
    src: str,
    cid: uuid.UUID,
    doc: str | None,
    device: uuid.UUID | None,
    actor: uuid.UUID | None,
) -> dict[str, Any]:
    """One row of :data:`STORE`'s JSON document (the column names of its recordset); orjson
    writes the dates and UUIDs itself, faster than ``isoformat`` and ``str``."""
    return {
        "m": m,
        "c": c,
        "n": n,
        "d": d,
        "p": p,
        "lot": lot,
        "site": site,
        "src": src,
        "cid": cid,
        "doc": doc,
        "device": device,
        "actor": actor,
    }


def _read_params(
    series: Sequence[tuple[str, str]], client_ids: Sequence[tuple[str, uuid.UUID]]
) -> dict[str, str | None]:
    return {
        "series": _json([{"m": m, "c": c} for m, c in series]),
        "clients": _json([{"m": m, "cid": c} for m, c in client_ids]),
    }


async def store_and_read(
    conn: AsyncConnection[Any],
    *,
    lock_keys: Sequence[int],
    rows: Sequence[dict[str, Any]],
    series: Sequence[tuple[str, str]],
    client_ids: Sequence[tuple[str, uuid.UUID]],
    now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Round trip one, opening the transaction: lock, insert, read back.

    Returns the rows of every affected series (and of records holding a posted client id),
    the new ones marked ``inserted``, with their rule facts and their open flags
    (``open_flags``: a list of flag objects, or None); and the doses recorded elsewhere that
    count for those series (:data:`LINKED`).
    """
    params = {**_read_params(series, client_ids), "rows": _json(list(rows)), "now": now}
    keys = {"keys": sorted(set(lock_keys))}
    try:
        return await _lock_store_read(conn, STORE, keys, params)
    except UniqueViolation:
        # A client id stored by another series' transaction during the statement.
        await conn.rollback()
        return await _lock_store_read(conn, STORE_GUARDED, keys, params)


async def _lock_store_read(
    conn: AsyncConnection[Any], store_sql: str, keys: dict[str, Any], params: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async with conn.pipeline():
        lock = conn.cursor()
        await lock.execute(LOCK, keys)
        # Binary results: psycopg reads dates, UUIDs and timestamps faster that way.
        store = conn.cursor(row_factory=dict_row, binary=True)
        await store.execute(store_sql, params)
        linked = conn.cursor(row_factory=dict_row, binary=True)
        await linked.execute(LINKED, {"series": params["series"]})
    return await store.fetchall(), await linked.fetchall()


async def read_again(
    conn: AsyncConnection[Any],
    stored: Sequence[dict[str, Any]],
    *,
    series: Sequence[tuple[str, str]],
    client_ids: Sequence[tuple[str, uuid.UUID]],
) -> list[dict[str, Any]]:
    """``stored`` (from :func:`store_and_read`) with the records it did not insert read again
    from a fresh snapshot (:data:`SERIES`), inside the same transaction."""
    new = [row for row in stored if row["inserted"]]
    ids = {row["id"] for row in new}
    cur = conn.cursor(row_factory=dict_row, binary=True)
    await cur.execute(SERIES, _read_params(series, client_ids))
    return new + [row for row in await cur.fetchall() if row["id"] not in ids]


async def write_changes(
    conn: AsyncConnection[Any],
    *,
    matches: Sequence[dict[str, Any]],
    resolve: Sequence[dict[str, Any]],
    flags: Sequence[dict[str, Any]],
    events: Sequence[dict[str, Any]],
) -> None:
    """Round trip two: what the rules decided, and the commit of the whole transaction."""
    if not (matches or resolve or flags or events):
        await conn.commit()
        return
    async with conn.pipeline(), conn.cursor() as cur:
        if matches:
            await cur.executemany(MATCH, matches)
        if resolve:
            await cur.executemany(RESOLVE, resolve)
        if flags:
            await cur.execute(INSERT_FLAGS, flag_arrays(flags))
        if events:
            await cur.execute(INSERT_EVENTS, event_arrays(events))
        await conn.commit()
