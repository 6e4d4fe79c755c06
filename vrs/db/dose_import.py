"""The set-based SQL of a bulk dose import, over its staging table (portable SQL).

:mod:`vrs.domain.dose_import` checks each CSV row and stages it in :data:`DOSE_STAGE` (its
record's and ``created`` event's ids are made of the line); these functions then find the clashes
(sites, products, repeats, stored records), and write the new records and their events,
each as one statement over the whole file.

On PostgreSQL, when the connection's role may set ``session_replication_role``, the two
inserts run with the row triggers of ``dose_record`` off (:func:`insert_records`): the
foreign keys were checked and their rows locked set-based beforehand
(:func:`lock_references`, :func:`unknown_sites`, :func:`unknown_products`) instead of once
per record and key, and the statistics summary gets the file's rows in one statement, as
its trigger would have appended them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Uuid, bindparam, column, select, table, text
from sqlalchemy.exc import IntegrityError

from vrs.db import stats
from vrs.db.bulk import StagingTable
from vrs.db.types import UTCDateTime

DOSE_STAGE = StagingTable(
    "dose_import_stage",
    (
        ("line", "int"),
        ("dose_key", "text"),
        ("coupon_number", "text"),
        ("dose_number", "int"),
        ("vaccinated_on", "date"),
        ("product_code", "text"),
        ("lot_number", "text"),
        ("site_code", "text"),
        ("doctor_name", "text"),
    ),
)
_S = DOSE_STAGE.name


def _uuid(conn: Connection, column: str) -> str:
    """A staged 32-hex-digit id as the engine keeps a UUID (SQLite: that very text)."""
    return f"CAST({column} AS UUID)" if conn.dialect.name == "postgresql" else column


def _line_id(conn: Connection, prefix: str) -> str:
    """A staged line's id: the 24 hex digits of bind parameter ``prefix``, then the line as
    8 (a file has fewer than 2**32 lines)."""
    if conn.dialect.name == "postgresql":
        return f"CAST(:{prefix} || lpad(to_hex(s.line), 8, '0') AS UUID)"
    return f":{prefix} || printf('%08x', s.line)"


def sort_in_memory(conn: Connection) -> None:
    """PostgreSQL: let this transaction's sorts and hashes over the whole file use 64 MB
    each (the server's default of 4 MB spills the series sort of 200,000 rows to disk)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")


@dataclass(frozen=True)
class Found:
    """The first few ``(line, ...)`` rows of a check, and how many there are in all."""

    rows: list[tuple[Any, ...]]
    total: int


def _found(conn: Connection, sql: str, params: dict[str, Any], limit: int) -> Found:
    rows = conn.execute(text(sql), {**params, "limit": max(limit, 1)}).all()
    total = int(rows[0][-1]) if rows else 0
    return Found([tuple(r)[:-1] for r in rows][:limit], total)


#: What each staged reference column must name: ``(column, table, key)``, as the foreign
#: keys of ``dose_record`` say (the municipality is checked before the file is read).
_REFERENCES = (("site_code", "site", "code"), ("product_code", "vaccine_product", "code"))


def lock_references(conn: Connection, municipality_code: str) -> bool:
    """PostgreSQL: lock the municipality, sites and products the staged doses name as a
    foreign-key check would (``FOR KEY SHARE``), once per row referenced instead of once
    per record, so that none of them can go before the import commits; then the checks
    that follow see what the insert will. False if the municipality is gone. SQLite:
    nothing to do (a write runs alone)."""
    if conn.dialect.name != "postgresql":
        return True
    locked = conn.execute(
        text("SELECT count(*) FROM (SELECT 1 FROM municipality WHERE code = :m FOR KEY SHARE) m"),
        {"m": municipality_code},
    ).scalar_one()
    for name, referenced, key in _REFERENCES:
        conn.exec_driver_sql(
            f"SELECT count(*) FROM (SELECT 1 FROM {referenced} WHERE {key} IN "  # noqa: S608
            f"(SELECT {name} FROM {_S}) FOR KEY SHARE) locked"
        )
    return bool(locked)


def _unregistered(conn: Connection, name: str, referenced: str, key: str, limit: int) -> Found:
    return _found(
        conn,
        f"""
        SELECT s.line, s.{name}, count(*) OVER ()
        FROM {_S} s
        WHERE NOT EXISTS (SELECT 1 FROM {referenced} t WHERE t.{key} = s.{name})
        ORDER BY s.line LIMIT :limit
        """,  # noqa: S608 - only constant names are formatted in
        {},
        limit,
    )


def unknown_sites(conn: Connection, *, limit: int) -> Found:
    """Staged lines whose site is not a registered site: ``(line, site_code)``."""
    return _unregistered(conn, *_REFERENCES[0], limit)


def unknown_products(conn: Connection, *, limit: int) -> Found:
    """Staged lines whose product is not a stored product: ``(line, product_code)``. The
    row check uses the cached reference data; this is the database's word on it."""
    return _unregistered(conn, *_REFERENCES[1], limit)


def stored_clashes(conn: Connection, municipality_code: str, *, limit: int) -> Found:
    """Staged doses already stored with other content, or voided:
    ``(line, record id, locked, status)``."""
    return _found(
        conn,
        f"""
        SELECT s.line, d.id, d.locked, d.status, count(*) OVER ()
        FROM {_S} s
        JOIN dose_record d
          ON d.municipality_code = :m AND d.coupon_number = s.coupon_number
         AND d.dose_number = s.dose_number
        WHERE d.status = 'voided' OR d.vaccinated_on <> s.vaccinated_on
           OR d.product_code <> s.product_code OR d.lot_number <> s.lot_number
           OR d.site_code <> s.site_code
        ORDER BY s.line LIMIT :limit
        """,  # noqa: S608 - only constant names are formatted in
        {"m": municipality_code},
        limit,
    )


def drop_stored(conn: Connection, municipality_code: str) -> int:
    """Remove staged doses stored already with the same content (a re-sent file); how many."""
    return int(
        conn.execute(
            text(
                f"""
                DELETE FROM {_S}
                WHERE EXISTS (
                    SELECT 1 FROM dose_record d
                    WHERE d.municipality_code = :m AND d.coupon_number = {_S}.coupon_number
                      AND d.dose_number = {_S}.dose_number)
                """  # noqa: S608 - only constant names are formatted in
            ),
            {"m": municipality_code},
        ).rowcount
    )


class StoredMeanwhile(Exception):
    """A staged dose was stored by someone else after the checks ran (a tablet's post):
    the insert failed on the natural key and the transaction must be rolled back."""


def insert_records(
    conn: Connection,
    municipality_code: str,
    actor: uuid.UUID | None,
    now: datetime,
    *,
    ids: tuple[str, str],
) -> None:
    """Insert every staged dose (matched to the resident holding its coupon number, else
    pending) with its ``created`` event, and count them in the statistics summary. ``ids``
    are the 24-hex-digit prefixes of the records' and the events' ids (:func:`_line_id`).

    Raises :class:`StoredMeanwhile` if one of the doses is stored already (nothing is
    skipped: the caller rolls the whole import back). With the row triggers off
    (:func:`_may_bypass_triggers`) the foreign keys are not checked again here: the caller
    has locked and checked them set-based (:func:`lock_references` and the checks).
    """
    params = {"m": municipality_code, "now": now, "actor": actor, "rid": ids[0], "eid": ids[1]}
    typed = (bindparam("now", type_=UTCDateTime()), bindparam("actor", type_=Uuid()))
    records = text(
        f"""
        INSERT INTO dose_record (
            municipality_code, id, coupon_number, dose_number, resident_local_id,
            vaccinated_on, product_code, lot_number, site_code, device_id, source,
            client_record_id, doctor_name, status, locked, version, registered_by,
            registered_at, updated_at)
        SELECT CAST(:m AS VARCHAR), {_line_id(conn, "rid")}, s.coupon_number, s.dose_number,
               r.local_id, s.vaccinated_on, s.product_code, s.lot_number, s.site_code,
               NULL, 'csv', NULL, s.doctor_name,
               CASE WHEN r.local_id IS NULL THEN 'pending' ELSE 'recorded' END,
               false, 1, {_uuid(conn, ":actor")}, :now, :now
        FROM {_S} s
        LEFT JOIN resident r
          ON r.municipality_code = :m AND r.coupon_number = s.coupon_number
        """  # noqa: S608 - only constant names are formatted in
    ).bindparams(*typed)
    events = text(
        f"""
        INSERT INTO dose_record_event (
            municipality_code, id, dose_record_id, kind, actor_credential_id, at, reason,
            after)
        SELECT CAST(:m AS VARCHAR), {_line_id(conn, "eid")}, {_line_id(conn, "rid")},
               'created', {_uuid(conn, ":actor")}, :now, 'bulk import', {_event_after(conn)}
        FROM {_S} s
        """  # noqa: S608 - only constant names are formatted in
    ).bindparams(*typed)
    bypass = _may_bypass_triggers(conn)
    if bypass:
        before = conn.exec_driver_sql("SHOW session_replication_role").scalar_one()
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    try:
        conn.execute(records, params)
    except IntegrityError as exc:
        if _unique_violation(exc):
            raise StoredMeanwhile from exc
        raise
    conn.execute(events, params)
    if bypass:
        conn.exec_driver_sql(f"SET LOCAL session_replication_role = {before}")
        conn.execute(text(stats.added_rows_sql(conn.dialect.name, _STAGED_ROWS)), params)


#: The staged doses as the rows :func:`insert_records` stores, for the summary.
_STAGED_ROWS = f"""(
    SELECT CAST(:m AS VARCHAR) AS municipality_code, s.vaccinated_on, s.product_code,
           s.dose_number, r.birth_date, 'recorded' AS status
    FROM {_S} s
    LEFT JOIN resident r ON r.municipality_code = :m AND r.coupon_number = s.coupon_number
)"""  # noqa: S608 - only constant names are formatted in


def _may_bypass_triggers(conn: Connection) -> bool:
    """PostgreSQL, and the role may set ``session_replication_role`` (a superuser, or
    ``GRANT SET ON PARAMETER session_replication_role`` on PostgreSQL 15 and later).

    Only ``dose_record``'s statistics triggers and the foreign keys' internal triggers are
    on the two tables the import writes; a test keeps that list, since any trigger added
    later would be skipped by the import too."""
    if conn.dialect.name != "postgresql":
        return False
    if conn.exec_driver_sql("SHOW is_superuser").scalar_one() == "on":
        return True
    if (conn.dialect.server_version_info or (0,)) < (15,):
        return False
    return bool(
        conn.exec_driver_sql(
            "SELECT has_parameter_privilege('session_replication_role', 'SET')"
        ).scalar_one()
    )


def _unique_violation(exc: IntegrityError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    return str(orig).startswith("UNIQUE constraint failed")  # SQLite


def _event_after(conn: Connection) -> str:
    """The ``created`` event's ``after`` document, built by the engine's JSON function."""
    fields = (
        "'vaccinated_on', CAST(s.vaccinated_on AS VARCHAR), 'product', s.product_code, "
        "'lot', s.lot_number, 'site_code', s.site_code, 'source', 'csv', "
        "'doctor_name', s.doctor_name, 'import_line', s.line"
    )
    if conn.dialect.name == "postgresql":
        return f"json_build_object({fields})"
    return f"json_object({fields})"


def staged_coupon_select() -> Any:
    """A subquery of the staged doses' coupon numbers."""
    return select(table(_S, column("coupon_number")).c.coupon_number)


def count_pending(conn: Connection, municipality_code: str) -> int:
    """Staged doses whose coupon number no resident of the municipality holds."""
    sql = f"""
        SELECT count(*) FROM {_S} s
        WHERE NOT EXISTS (SELECT 1 FROM resident r
                          WHERE r.municipality_code = :m AND r.coupon_number = s.coupon_number)
    """  # noqa: S608 - only constant names are formatted in
    return int(conn.execute(text(sql), {"m": municipality_code}).scalar_one())


def refresh_statistics(conn: Connection) -> None:
    """Let PostgreSQL's planner see the records just inserted, and the flags earlier
    imports opened, before the series are read back: planned on the statistics from before
    a large import, the read-back joins can pick a nested loop over the whole table
    (minutes instead of seconds; autovacuum analyses a table only some time after it
    changed, and files imported back to back do not wait for it)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE dose_record, quality_flag")


RECHECK = "dose_import_recheck"


def create_recheck(
    conn: Connection, municipality_code: str, interval_rules: str, age_ranges: str
) -> int:
    """PostgreSQL only: the staged coupons whose series the Python flag rules must see, in
    the temporary table :data:`RECHECK`; how many.

    Run before the insert (a stored dose of the coupon is then an earlier one). Every other
    staged coupon is *fresh* and *clean*: its only records will be this file's (no earlier
    dose, no dose linked from another municipality, so no open flag and nothing pending to
    match), and none of its doses can meet a flag rule. The tests
    here are supersets of the rules (:mod:`vrs.domain.rules`), never narrower:

    - lot: no ``vaccine_lot`` row of this number and product that expires on or after the
      dose (covers ``LOT_UNKNOWN``, ``LOT_PRODUCT_MISMATCH``, ``LOT_EXPIRED``);
    - series order: the doses sorted by number are not numbered 1, 2, 3, … without a hole,
      or their dates do not rise strictly (``DOSE_NUMBER_GAP``, ``DOSE_DATE_ORDER``: a clash
      between any two doses implies one between neighbours);
    - interval: some interval rule for the dose number and product in effect on the date
      (age bounds ignored) would put the earliest date after it; ``add_months(p, m)`` is
      never later than PostgreSQL's ``p + (m + 1) months``;
    - age: the holder's birth date is known and no age range of the product in effect on the
      date surely covers the age (``b + (min + 1) months <= day <= b + max months`` implies
      ``min <= age_in_months <= max``).

    ``interval_rules`` and ``age_ranges`` are JSON arrays of the reference data the Python
    rules use (:func:`vrs.domain.refcache.reference_data`), so both sides see the same rows.
    """
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {RECHECK}")
    conn.execute(
        text(
            f"""
            CREATE TEMP TABLE {RECHECK} ON COMMIT DROP AS
            WITH doses AS (
                SELECT s.coupon_number, s.dose_number, s.vaccinated_on, s.product_code,
                       s.lot_number,
                       lag(s.dose_number) OVER w AS prev_number,
                       lag(s.vaccinated_on) OVER w AS prev_on
                FROM {_S} s
                WINDOW w AS (PARTITION BY s.coupon_number ORDER BY s.dose_number)
            ), rules AS MATERIALIZED (
                SELECT * FROM jsonb_to_recordset(CAST(:rules AS jsonb)) AS r(
                    product_code text, dose_from int, dose_to int, min_days int,
                    min_months int, effective_from date, effective_until date)
            ), ranges AS MATERIALIZED (
                SELECT * FROM jsonb_to_recordset(CAST(:ranges AS jsonb)) AS a(
                    product_code text, min_age_months int, max_age_months int,
                    effective_from date, effective_until date)
            )
            SELECT DISTINCT d.coupon_number
            FROM doses d
            LEFT JOIN resident h
              ON h.municipality_code = :m AND h.coupon_number = d.coupon_number
            -- At most one lot of a number and product (its key): a join, not a probe a row.
            LEFT JOIN vaccine_lot l
              ON l.lot_number = d.lot_number AND l.product_code = d.product_code
            WHERE l.expires_on IS NULL OR l.expires_on < d.vaccinated_on
               OR d.dose_number - coalesce(d.prev_number, 0) <> 1
               OR d.vaccinated_on <= d.prev_on
               OR (d.prev_on IS NOT NULL AND EXISTS (
                      SELECT 1 FROM rules r
                      WHERE r.dose_from <= d.dose_number
                        AND (r.dose_to IS NULL OR d.dose_number <= r.dose_to)
                        AND (r.product_code IS NULL OR r.product_code = d.product_code)
                        AND r.effective_from <= d.vaccinated_on
                        AND (r.effective_until IS NULL OR d.vaccinated_on <= r.effective_until)
                        AND (d.vaccinated_on < d.prev_on + coalesce(r.min_days, 0)
                             OR d.vaccinated_on < d.prev_on
                                + make_interval(months => coalesce(r.min_months, -1) + 1))))
               OR (h.birth_date IS NOT NULL AND NOT EXISTS (
                      SELECT 1 FROM ranges a
                      WHERE a.product_code = d.product_code
                        AND a.effective_from <= d.vaccinated_on
                        AND (a.effective_until IS NULL OR d.vaccinated_on <= a.effective_until)
                        AND d.vaccinated_on
                            >= h.birth_date + make_interval(months => a.min_age_months + 1)
                        AND (a.max_age_months IS NULL OR d.vaccinated_on
                             <= h.birth_date + make_interval(months => a.max_age_months))))
               OR EXISTS (
                      SELECT 1 FROM dose_record o
                      WHERE o.municipality_code = :m AND o.coupon_number = d.coupon_number)
               OR EXISTS (
                      SELECT 1 FROM resident_link k
                      WHERE k.municipality_code = :m AND k.resident_local_id = h.local_id)
            """  # noqa: S608 - only constant names are formatted in
        ),
        {"m": municipality_code, "rules": interval_rules, "ranges": age_ranges},
    )
    return int(conn.execute(text(f"SELECT count(*) FROM {RECHECK}")).scalar_one())  # noqa: S608


def recheck_select() -> Any:
    """A subquery of the coupons :func:`create_recheck` kept."""
    return select(table(RECHECK, column("coupon_number")).c.coupon_number)
