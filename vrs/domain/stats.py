"""Open statistics: dose counts for open data, with small cells suppressed.

:func:`dose_statistics` reads the summary that triggers keep on every write of a dose
record (:mod:`vrs.db.stats`), never the records themselves, so a request costs the same on
ten million records as on ten thousand. Counts are grouped by any of ``date``,
``municipality``, ``product``, ``age_band`` and ``dose_number`` over an optional date range;
a cell of 1-9 doses is **suppressed** (no count, ``suppressed`` true) so that no individual
can be singled out. Voided records do not count.

Codes: ``BAD_GROUP_BY``, ``BAD_DATE``, ``BAD_RANGE``, ``BAD_FORMAT``, ``TOO_MANY_CELLS``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Table, func, select
from sqlmodel import Session

from vrs.db.models import DoseStats
from vrs.domain.errors import Unprocessable

STATS: Table = DoseStats.__table__  # type: ignore[attr-defined]
#: Cells with fewer doses than this (and more than none) are suppressed.
MIN_CELL = 10
MAX_CELLS = 100_000
FORMATS = ("json", "csv")
#: API name -> summary column.
GROUPS = {
    "date": "vaccinated_on",
    "municipality": "municipality_code",
    "product": "product_code",
    "age_band": "age_band",
    "dose_number": "dose_number",
}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class StatsQuery:
    group_by: tuple[str, ...]
    date_from: date | None
    date_to: date | None
    format: str


def parse_query(
    group_by: str | None, date_from: str | None, date_to: str | None, fmt: str | None
) -> StatsQuery:
    names = tuple(n.strip() for n in (group_by or "").split(",") if n.strip())
    unknown = [n for n in names if n not in GROUPS]
    if unknown or len(set(names)) != len(names):
        raise Unprocessable(
            "BAD_GROUP_BY",
            f"group_by is a comma-separated list of distinct names from: {', '.join(GROUPS)}",
        )
    start, end = _day("from", date_from), _day("to", date_to)
    if start and end and start > end:
        raise Unprocessable("BAD_RANGE", "from is after to")
    fmt = (fmt or "json").lower()
    if fmt not in FORMATS:
        raise Unprocessable("BAD_FORMAT", "format is json or csv")
    return StatsQuery(names, start, end, fmt)


def _day(name: str, text: str | None) -> date | None:
    if text is None or text == "":
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise Unprocessable("BAD_DATE", f"{name} is a date YYYY-MM-DD", field=name) from None


@dataclass(frozen=True)
class StatsTable:
    query: StatsQuery
    #: One tuple per cell: the group values in ``query.group_by`` order, then the count
    #: (None when suppressed).
    rows: list[tuple[Any, ...]]
    suppressed: int

    def as_json(self) -> dict[str, Any]:
        q = self.query
        return {
            "group_by": list(q.group_by),
            "from": q.date_from.isoformat() if q.date_from else None,
            "to": q.date_to.isoformat() if q.date_to else None,
            "suppression_threshold": MIN_CELL,
            "suppressed_cells": self.suppressed,
            "cells": [
                {
                    **{name: _plain(v) for name, v in zip(q.group_by, row, strict=False)},
                    "doses": row[-1],
                    "suppressed": row[-1] is None,
                }
                for row in self.rows
            ],
        }

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*self.query.group_by, "doses", "suppressed"])
        for row in self.rows:
            count = row[-1]
            writer.writerow(
                [*(_plain(v) for v in row[:-1]), "" if count is None else count, count is None]
            )
        return out.getvalue()


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def dose_statistics(session: Session, query: StatsQuery) -> StatsTable:
    """The cells of ``query`` (public: no credential, no personal data)."""
    columns = [STATS.c[GROUPS[name]] for name in query.group_by]
    total = func.sum(STATS.c.doses)
    stmt = select(*columns, total).group_by(*columns).having(total > 0)
    if query.date_from:
        stmt = stmt.where(STATS.c.vaccinated_on >= query.date_from)
    if query.date_to:
        stmt = stmt.where(STATS.c.vaccinated_on <= query.date_to)
    if columns:
        stmt = stmt.order_by(*columns)
    stmt = stmt.limit(MAX_CELLS + 1)
    found = session.execute(stmt).all()
    if len(found) > MAX_CELLS:
        raise Unprocessable(
            "TOO_MANY_CELLS",
            f"the answer would have more than {MAX_CELLS} cells; group by less or narrow the dates",
        )
    rows: list[tuple[Any, ...]] = []
    suppressed = 0
    for *keys, count in found:
        count = int(count)
        if count < MIN_CELL:
            suppressed += 1
            rows.append((*_dates(query, keys), None))
        else:
            rows.append((*_dates(query, keys), count))
    return StatsTable(query, rows, suppressed)


def _dates(query: StatsQuery, keys: list[Any]) -> list[Any]:
    """SQLite keeps dates as text: give them back as dates."""
    return [
        date.fromisoformat(v) if name == "date" and isinstance(v, str) else v
        for name, v in zip(query.group_by, keys, strict=True)
    ]
