"""The dose statistics summary, kept by the database on every write of ``dose_record``.

``dose_stats`` holds signed counts per (municipality, date, product, dose number, age band).
Triggers on ``dose_record`` append a row for what each statement changed, so every write
path (tablet posts on either ingest path, bulk imports, corrections, voids, resident
matches) keeps it without knowing about it, and concurrent writers never wait on one another:
they append, they do not update shared counters.

- PostgreSQL: statement-level triggers with transition tables, one aggregated
  ``INSERT ... SELECT`` per statement (a bulk import of a million doses adds a few thousand
  rows);
- SQLite: row-level triggers.

A count is the sum of a key's rows; :func:`compact` folds the rows into one per key (run
it from time to time: ``vrs stats compact``), and :func:`rebuild` recomputes the whole
summary from ``dose_record`` (``vrs stats rebuild``; also the fix after a resident's birth
date changed, which the triggers do not follow). Voided records count for nothing; a record
whose resident is unknown yet (pending) counts under the age band ``unknown``.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

#: Upper bounds (exclusive) of the age bands in whole years at the dose, and their names.
AGE_BANDS = (
    (5, "0-4"), (12, "5-11"), (18, "12-17"), (30, "18-29"), (40, "30-39"), (50, "40-49"),
    (60, "50-59"), (65, "60-64"), (75, "65-74"),
)  # fmt: skip
LAST_BAND = "75+"
UNKNOWN_BAND = "unknown"


def _age_years(dialect: str, day: str, birth: str) -> str:
    if dialect == "postgresql":
        return f"CAST(date_part('year', age({day}, {birth})) AS INTEGER)"
    return (
        f"(CAST(strftime('%Y', {day}) AS INTEGER) - CAST(strftime('%Y', {birth}) AS INTEGER)"
        f" - (strftime('%m-%d', {day}) < strftime('%m-%d', {birth})))"
    )


def age_band_sql(age: str) -> str:
    """A SQL expression naming the age band of an age in whole years (null: unknown)."""
    cases = " ".join(f"WHEN {age} < {upper} THEN '{name}'" for upper, name in AGE_BANDS)
    return f"CASE WHEN {age} IS NULL THEN '{UNKNOWN_BAND}' {cases} ELSE '{LAST_BAND}' END"


def _new_id(dialect: str) -> str:
    return "gen_random_uuid()" if dialect == "postgresql" else "lower(hex(randomblob(16)))"


def _keyed(
    dialect: str, rows: str, sign: str, *, born: bool = False, whole_table: bool = False
) -> str:
    """Rows of ``rows`` (a transition table) as summary keys with ``sign``.

    ``born``: the rows carry the holder's ``birth_date`` already. Otherwise the resident's
    birth date is looked up per record on ``resident``'s primary key: a join would be planned
    blind on a transition table (it has no statistics), and PostgreSQL hashed the whole
    resident table for every statement, 10 ms per tablet post at 50,000 residents and growing
    with the municipality (docs/benchmarks.md). ``whole_table``: the rows are all of
    ``dose_record`` (a rebuild or a recount), where that hash join is the right plan.
    """
    if born:
        source = rows
    elif whole_table:
        source = (
            f"(SELECT x.*, r.birth_date FROM {rows} x LEFT JOIN resident r "  # noqa: S608 - constant text
            "ON r.municipality_code = x.municipality_code AND r.local_id = x.resident_local_id)"
        )
    else:
        source = (
            "(SELECT x.*, (SELECT r.birth_date FROM resident r "  # noqa: S608 - constant text
            "WHERE r.municipality_code = x.municipality_code "
            f"AND r.local_id = x.resident_local_id) AS birth_date FROM {rows} x)"
        )
    age = _age_years(dialect, "x.vaccinated_on", "x.birth_date")
    # PostgreSQL would pull the inner query up and compute the age once per band tested
    # (ten times a row: most of the trigger's time); OFFSET 0 keeps it computed once.
    fence = " OFFSET 0" if dialect == "postgresql" else ""
    return (
        "SELECT municipality_code, vaccinated_on, product_code, dose_number, "  # noqa: S608
        f"{age_band_sql('age')} AS age_band, n FROM ("
        "SELECT x.municipality_code, x.vaccinated_on, x.product_code, x.dose_number, "
        f"{age} AS age, {sign} AS n FROM {source} x WHERE x.status <> 'voided'{fence}) a"
    )


_COLUMNS = "municipality_code, id, vaccinated_on, product_code, dose_number, age_band, doses"


def _append(dialect: str, keyed: str) -> str:
    return (
        f"INSERT INTO dose_stats ({_COLUMNS}) "  # noqa: S608
        f"SELECT k.municipality_code, {_new_id(dialect)}, k.vaccinated_on, k.product_code, "
        f"k.dose_number, k.age_band, sum(k.n) FROM ({keyed}) k "
        f"GROUP BY k.municipality_code, k.vaccinated_on, k.product_code, k.dose_number, "
        f"k.age_band HAVING sum(k.n) <> 0"
    )


def added_rows_sql(dialect: str, rows: str) -> str:
    """The summary rows that inserting ``rows`` adds: what the insert trigger appends for
    one statement, for a writer that inserts with the triggers off (the bulk import).
    ``rows`` is a table or parenthesised subquery with ``dose_record``'s
    ``municipality_code``, ``vaccinated_on``, ``product_code``, ``dose_number`` and
    ``status`` columns, and the holder's ``birth_date`` (null: pending or not known)."""
    return _append(dialect, _keyed(dialect, rows, "1", born=True))


def function_ddl() -> list[str]:
    """PostgreSQL: the statements that (re)define the trigger functions, for a revision
    that changes their SQL (the triggers themselves stay)."""
    return [s for s in _postgresql_ddl() if s.startswith("CREATE OR REPLACE FUNCTION")]


def _postgresql_ddl() -> list[str]:
    pg = "postgresql"
    bodies = {
        "insert": _append(pg, _keyed(pg, "new_rows", "1")),
        "delete": _append(pg, _keyed(pg, "old_rows", "-1")),
        "update": _append(
            pg, f"{_keyed(pg, 'old_rows', '-1')} UNION ALL {_keyed(pg, 'new_rows', '1')}"
        ),
    }
    tables = {
        "insert": "REFERENCING NEW TABLE AS new_rows",
        "delete": "REFERENCING OLD TABLE AS old_rows",
        "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    }
    statements = []
    for op, body in bodies.items():
        statements.append(
            f"CREATE OR REPLACE FUNCTION dose_stats_on_{op}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {body}; RETURN NULL; END $$"
        )
        statements.append(
            f"CREATE TRIGGER dose_stats_{op} AFTER {op.upper()} ON dose_record "
            f"{tables[op]} FOR EACH STATEMENT EXECUTE FUNCTION dose_stats_on_{op}()"
        )
    return statements


def _sqlite_ddl() -> list[str]:
    lite = "sqlite"

    def row(alias: str, sign: str) -> str:
        # A one-row "transition table" of the OLD or NEW row.
        columns = ", ".join(
            f"{alias}.{c} AS {c}"
            for c in ("municipality_code", "vaccinated_on", "product_code", "dose_number",
                      "resident_local_id", "status")
        )  # fmt: skip
        return _keyed(lite, f"(SELECT {columns})", sign)

    def append(*rows: tuple[str, str]) -> str:
        return _append(lite, " UNION ALL ".join(row(alias, sign) for alias, sign in rows))

    return [
        f"CREATE TRIGGER dose_stats_insert AFTER INSERT ON dose_record "
        f"BEGIN {append(('NEW', '1'))}; END",
        f"CREATE TRIGGER dose_stats_delete AFTER DELETE ON dose_record "
        f"BEGIN {append(('OLD', '-1'))}; END",
        f"CREATE TRIGGER dose_stats_update AFTER UPDATE ON dose_record "
        f"BEGIN {append(('OLD', '-1'), ('NEW', '1'))}; END",
    ]


def trigger_ddl(dialect: str) -> list[str]:
    """The statements that create the summary's triggers on ``dialect``."""
    return _postgresql_ddl() if dialect == "postgresql" else _sqlite_ddl()


def drop_trigger_ddl(dialect: str) -> list[str]:
    statements = [f"DROP TRIGGER IF EXISTS dose_stats_{op} ON dose_record" for op in
                  ("insert", "update", "delete")]  # fmt: skip
    if dialect == "postgresql":
        statements += [f"DROP FUNCTION IF EXISTS dose_stats_on_{op}()" for op in
                       ("insert", "update", "delete")]  # fmt: skip
        return statements
    return [s.replace(" ON dose_record", "") for s in statements]


def compact(conn: Connection) -> int:
    """Fold the summary into one row per key; the number of rows afterwards."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                f"""
                WITH gone AS (DELETE FROM dose_stats RETURNING *)
                INSERT INTO dose_stats ({_COLUMNS})
                SELECT municipality_code, gen_random_uuid(), vaccinated_on, product_code,
                       dose_number, age_band, sum(doses)
                FROM gone
                GROUP BY municipality_code, vaccinated_on, product_code, dose_number, age_band
                HAVING sum(doses) <> 0
                """  # noqa: S608 - constant text
            )
        )
    else:
        conn.exec_driver_sql("DROP TABLE IF EXISTS temp.dose_stats_folded")
        conn.exec_driver_sql(
            "CREATE TEMP TABLE dose_stats_folded AS SELECT municipality_code, vaccinated_on, "
            "product_code, dose_number, age_band, sum(doses) AS doses FROM dose_stats "
            "GROUP BY municipality_code, vaccinated_on, product_code, dose_number, age_band "
            "HAVING sum(doses) <> 0"
        )
        conn.exec_driver_sql("DELETE FROM dose_stats")
        conn.exec_driver_sql(
            f"INSERT INTO dose_stats ({_COLUMNS}) SELECT municipality_code, "  # noqa: S608
            "lower(hex(randomblob(16))), vaccinated_on, product_code, dose_number, age_band, "
            "doses FROM dose_stats_folded"
        )
        conn.exec_driver_sql("DROP TABLE temp.dose_stats_folded")
    return int(conn.execute(text("SELECT count(*) FROM dose_stats")).scalar_one())


def rebuild(conn: Connection) -> int:
    """Recompute the summary from ``dose_record``; the number of rows afterwards."""
    if conn.dialect.name == "postgresql":
        # Writers of dose records wait until the new summary is in place.
        conn.exec_driver_sql("LOCK TABLE dose_record IN SHARE MODE")
    conn.exec_driver_sql("DELETE FROM dose_stats")
    conn.exec_driver_sql(rebuild_sql(conn.dialect.name))
    return int(conn.execute(text("SELECT count(*) FROM dose_stats")).scalar_one())


_KEY = "municipality_code, vaccinated_on, product_code, dose_number, age_band"


def recount_sql(dialect: str) -> str:
    """The counts the summary should hold, one row per key (``doses`` not 0), counted
    directly over ``dose_record``: a check of the summary the triggers keep."""
    return (
        f"SELECT {_KEY}, sum(n) AS doses "  # noqa: S608
        f"FROM ({_keyed(dialect, 'dose_record', '1', whole_table=True)}) k "
        f"GROUP BY {_KEY} HAVING sum(n) <> 0"
    )


#: The counts the summary holds, one row per key (``doses`` not 0).
TOTALS_SQL = (
    f"SELECT {_KEY}, sum(doses) AS doses FROM dose_stats "  # noqa: S608
    f"GROUP BY {_KEY} HAVING sum(doses) <> 0"
)


def rebuild_sql(dialect: str) -> str:
    """The summary rows of every stored record (into an empty summary)."""
    return _append(dialect, _keyed(dialect, "dose_record", "1", whole_table=True))
