"""Bulk loading for imports: a staging table, private to one transaction, filled fast.

An import validates rows in Python, streams them into a :class:`StagingTable`, and then
works set-based in SQL (duplicates, clashes with stored rows, the upsert). Only the filling
is engine-specific:

- PostgreSQL: a ``TEMP`` table (``ON COMMIT DROP``) filled with ``COPY ... FROM STDIN``
  through psycopg 3's driver connection, streamed as rows arrive;
- SQLite: a ``temp`` table filled with ``executemany`` in chunks.

The SQL that reads the staging table afterwards is portable.

:func:`insert_rows` writes many rows into a real table the same way: ``COPY`` on
PostgreSQL, ``executemany`` elsewhere and for a few rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

from psycopg.types.json import Json
from sqlalchemy import JSON, Connection, Table, insert, text

ColumnKind = Literal["int", "text", "date", "bool"]

_SQL_TYPES: dict[str, dict[ColumnKind, str]] = {
    "postgresql": {"int": "INTEGER", "text": "TEXT", "date": "DATE", "bool": "BOOLEAN"},
    # SQLAlchemy keeps dates as ISO text and booleans as 0/1 on SQLite.
    "sqlite": {"int": "INTEGER", "text": "TEXT", "date": "TEXT", "bool": "INTEGER"},
}
_SQLITE_CHUNK = 10_000


@dataclass(frozen=True)
class StagingTable:
    """A temporary table of ``(name, kind)`` columns; rows are tuples in that order.

    Use it inside one transaction: :meth:`create`, :meth:`load`, :meth:`index`, query it by
    ``name``, and :meth:`drop` (PostgreSQL also drops it at commit; a rollback undoes it).
    """

    name: str
    columns: tuple[tuple[str, ColumnKind], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def create(self, conn: Connection) -> None:
        types = _SQL_TYPES[conn.dialect.name]
        body = ", ".join(f"{c} {types[k]}" for c, k in self.columns)
        self.drop(conn)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"CREATE TEMP TABLE {self.name} ({body}) ON COMMIT DROP")
        else:
            conn.exec_driver_sql(f"CREATE TEMP TABLE {self.name} ({body})")

    def drop(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.name}")

    def load(self, conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
        """Stream ``rows`` into the table; the iterable is consumed lazily, once."""
        if conn.dialect.name == "postgresql":
            self._copy(conn, rows)
        else:
            self._insert_chunks(conn, rows)

    def index(self, conn: Connection, *columns: str) -> None:
        """Index ``columns`` (after loading: cheaper than maintaining them during it), and
        :meth:`analyze`."""
        for column in columns:
            conn.exec_driver_sql(f"CREATE INDEX {self.name}_{column}_ix ON {self.name} ({column})")
        self.analyze(conn)

    def analyze(self, conn: Connection) -> None:
        """Gather the planner's statistics (autovacuum never analyses temporary tables)."""
        conn.exec_driver_sql(f"ANALYZE {self.name}")

    def _copy(self, conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
        driver: Any = conn.connection.driver_connection
        names = ", ".join(self.column_names)
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {self.name} ({names}) FROM STDIN") as copy,
        ):
            write_row = copy.write_row
            for row in rows:
                write_row(row)

    def _insert_chunks(self, conn: Connection, rows: Iterable[Sequence[Any]]) -> None:
        driver: Any = conn.connection.driver_connection
        marks = ", ".join("?" for _ in self.columns)
        names = ", ".join(self.column_names)
        sql = f"INSERT INTO {self.name} ({names}) VALUES ({marks})"  # noqa: S608 - constants
        cursor = driver.cursor()
        try:
            for chunk in _chunks(rows, _SQLITE_CHUNK):
                cursor.executemany(sql, chunk)
        finally:
            cursor.close()


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


@dataclass(frozen=True)
class Duplicates:
    """Lines whose value in a column already appeared on an earlier line (``first_lines``)."""

    lines: list[tuple[int, int]]
    total: int


def duplicate_lines(
    conn: Connection, table: StagingTable, column: str, *, limit: int
) -> Duplicates:
    """Every staged line (after the first) repeating a non-null ``column`` value.

    ``lines`` holds ``(line, first_line)`` for the first ``limit`` of them by line; ``total``
    counts them all. The table needs a ``line`` column.
    """
    sql = text(
        f"""
        SELECT s.line, d.first_line, count(*) OVER () AS total
        FROM {table.name} s
        JOIN (
            SELECT {column} AS value, min(line) AS first_line
            FROM {table.name}
            WHERE {column} IS NOT NULL
            GROUP BY {column}
            HAVING count(*) > 1
        ) d ON s.{column} = d.value
        WHERE s.line > d.first_line
        ORDER BY s.line
        LIMIT :limit
        """  # noqa: S608 - table and column names are constants of the caller, not input
    )
    found = conn.execute(sql, {"limit": max(limit, 1)}).all()
    total = int(found[0].total) if found else 0
    return Duplicates(lines=[(int(r.line), int(r.first_line)) for r in found][:limit], total=total)


#: From how many rows :func:`insert_rows` copies instead of inserting row by row.
COPY_FROM = 100


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], *, copy_from: int = COPY_FROM
) -> None:
    """Insert ``rows`` (dicts with the same keys, as for ``executemany``) into ``table``.

    PostgreSQL, ``copy_from`` rows or more, and no column left out that has a default:
    ``COPY`` through psycopg's driver connection, storing what the ``INSERT`` would (JSON
    documents as SQLAlchemy's ``JSON`` type writes them, ``None`` as JSON ``null`` unless the
    type says ``none_as_null``); otherwise one ``executemany``.
    """
    if not rows:
        return
    names = list(rows[0])
    left_out = [c for c in table.columns if c.name not in rows[0]]
    if (
        conn.dialect.name != "postgresql"
        or len(rows) < copy_from
        or any(c.default is not None or c.server_default is not None for c in left_out)
    ):
        conn.execute(insert(table), list(rows))
        return
    columns = [table.columns[n] for n in names]
    documents = [isinstance(c.type, JSON) for c in columns]
    null_documents = [isinstance(c.type, JSON) and not c.type.none_as_null for c in columns]
    driver: Any = conn.connection.driver_connection
    listed = ", ".join(names)
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({listed}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    Json(value) if document and (value is not None or null) else value
                    for value, document, null in zip(
                        (row[n] for n in names), documents, null_documents, strict=True
                    )
                ]
            )
