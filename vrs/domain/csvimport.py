"""Streaming, all-or-nothing CSV imports: read, check and report bad rows of a large file.

An import reads a UTF-8 CSV file once, line by line, never holding it whole: the caller
spools the upload to a temporary file and hands the open binary file here. The pieces:

- :class:`ErrorReport` collects every bad row (``line``, ``column``, ``code``, ``message``),
  keeps the first ``limit`` of them in line order and counts them all;
  :meth:`ErrorReport.raise_if_any` turns them into one ``422 INVALID_FILE``.
- :class:`CsvRecords` checks the header and yields ``(line, fields)`` for each data line that
  is well-formed CSV with the right number of fields, reporting the others.

One record is one physical line (a quoted field may hold commas and doubled quotes but no
line break), so ``line`` is always the physical line number a spreadsheet shows.

Checks every importer gets, with their stable codes: ``BAD_ENCODING`` (not UTF-8),
``LINE_TOO_LONG`` (over ``max_line_bytes``; the line is skipped without being read into
memory), ``BAD_QUOTING``, ``WRONG_FIELD_COUNT``, ``FORMULA_INJECTION`` (a field starting
with ``=``, ``+``, ``-``, ``@``, a tab or a CR, after any spaces — spreadsheet exports of
imported data must never execute) and ``BAD_CHARACTER`` (other control characters, NUL
included). The header: ``MISSING_COLUMN``, ``UNKNOWN_COLUMN``, ``DUPLICATE_COLUMN``,
``COLUMN_ORDER``; no header or no data line: ``422 EMPTY_FILE``.
"""

from __future__ import annotations

import csv
import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from vrs.domain.errors import Unprocessable

_BOM = "\ufeff"
#: Anything that needs a closer look than ``str.split(",")``: quotes, control characters
#: (tab, CR and NUL included) or a field that starts like a spreadsheet formula.
_NEEDS_CARE = re.compile(r'["\x00-\x1f\x7f]|(?:^|,) *[=+\-@]')
_FORMULA_START = frozenset("=+-@\t\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: How much of an over-long line is read at a time while skipping it.
_SKIP_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True, order=True)
class RowError:
    """One problem in an import file; ``column`` is None for problems of the whole line."""

    line: int
    column: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }


class ErrorReport:
    """The bad rows of one file: the first ``limit`` by line number, and how many in all.

    Add problems found while reading in line order with :meth:`add`; add problems found
    later by set-based checks (duplicates, clashes with stored rows) as line-ordered lists
    with :meth:`add_sorted`. :meth:`raise_if_any` merges them by line.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.total = 0
        self._in_order: list[RowError] = []
        self._sorted_runs: list[list[RowError]] = []

    def __bool__(self) -> bool:
        return self.total > 0

    def add(self, line: int, column: str | None, code: str, message: str) -> None:
        """Record a problem; call in non-decreasing line order."""
        self.total += 1
        if len(self._in_order) < self.limit:
            self._in_order.append(RowError(line, column, code, message))

    def add_sorted(self, errors: Iterable[RowError], total: int) -> None:
        """Record ``total`` problems of which ``errors`` (in line order) are the first few."""
        self.total += total
        self._sorted_runs.append(list(errors)[: self.limit])

    def first(self) -> list[RowError]:
        """The reported problems: at most ``limit``, sorted by line."""
        runs = [self._in_order, *self._sorted_runs]
        merged = heapq.merge(*runs, key=lambda e: e.line)
        return [e for _, e in zip(range(self.limit), merged, strict=False)]

    def raise_if_any(self) -> None:
        """Raise ``422 INVALID_FILE`` listing the problems, if there are any."""
        if not self.total:
            return
        listed = self.first()
        raise Unprocessable(
            "INVALID_FILE",
            f"the file has {self.total} problem(s); nothing was written",
            errors=[e.as_dict() for e in listed],
            error_count=self.total,
            truncated=self.total > len(listed),
        )


class _BadLine(Exception):
    """A line that was reported and must be skipped."""


def empty_file() -> Unprocessable:
    return Unprocessable("EMPTY_FILE", "the file has no header or no data rows")


class CsvRecords:
    """The data lines of a CSV file whose header must be exactly ``columns``.

    Build it with :meth:`open`, which reads and checks the header (raising
    ``EMPTY_FILE`` or ``INVALID_FILE`` at once), then iterate: each well-formed line comes
    out as ``(line, fields)``; the others go to ``report``. Blank lines are skipped.
    After iteration, ``rows`` is the number of data lines (good or bad).
    """

    def __init__(
        self,
        body: BinaryIO,
        columns: tuple[str, ...],
        *,
        max_line_bytes: int,
        report: ErrorReport,
    ) -> None:
        self._body = body
        self.columns = columns
        self._max_line_bytes = max_line_bytes
        self._report = report
        self._line = 0
        self.rows = 0

    @classmethod
    def open(
        cls,
        body: BinaryIO,
        columns: tuple[str, ...],
        *,
        max_line_bytes: int,
        report: ErrorReport,
    ) -> CsvRecords:
        records = cls(body, columns, max_line_bytes=max_line_bytes, report=report)
        records._read_header()
        return records

    def _read_header(self) -> None:
        text: str | None = ""
        while text is not None and not text.strip():
            try:
                text = self._next_text()
            except _BadLine:
                self._report.raise_if_any()
            if text is not None and self._line == 1:
                text = text.removeprefix(_BOM)
        if text is None:
            raise empty_file()
        fields = self._split(text)
        if fields is None:
            self._report.raise_if_any()
            return
        check_header(self._line, [f.strip() for f in fields], self.columns, self._report)
        self._report.raise_if_any()

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.columns)
        needs_care = _NEEDS_CARE.search
        next_text = self._next_text
        report = self._report
        while True:
            try:
                text = next_text()
            except _BadLine:
                self.rows += 1
                continue
            if text is None:
                break
            if not text:
                continue
            self.rows += 1
            careful = needs_care(text) is not None
            if careful:
                maybe = self._split(text)
                if maybe is None:
                    continue
                fields = maybe
            else:
                fields = text.split(",")
            if len(fields) != width:
                report.add(
                    self._line,
                    None,
                    "WRONG_FIELD_COUNT",
                    f"expected {width} fields, found {len(fields)}",
                )
                continue
            if careful and not self._fields_are_safe(fields):
                continue
            yield self._line, fields
        if self.rows == 0:
            raise empty_file()

    def _next_text(self) -> str | None:
        """The next physical line without its line break; None at the end of the file.

        Raises :class:`_BadLine` (after reporting it) for an over-long line, which is
        skipped chunk by chunk without being read whole, and for one that is not UTF-8.
        """
        limit = self._max_line_bytes
        raw = self._body.readline(limit + 2)
        if not raw:
            return None
        self._line += 1
        if raw[-1:] == b"\n":
            raw = raw[:-2] if raw[-2:-1] == b"\r" else raw[:-1]
        elif len(raw) > limit:
            self._skip_rest_of_line()
        if len(raw) > limit:
            self._report.add(
                self._line, None, "LINE_TOO_LONG", f"the line is longer than {limit} bytes"
            )
            raise _BadLine
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._report.add(
                self._line,
                None,
                "BAD_ENCODING",
                f"the line is not UTF-8 (byte {exc.start + 1} of the line); save the file as UTF-8",
            )
            raise _BadLine from None

    def _skip_rest_of_line(self) -> None:
        while True:
            chunk = self._body.readline(_SKIP_CHUNK)
            if not chunk or chunk[-1:] == b"\n":
                return

    def _split(self, text: str) -> list[str] | None:
        """Fields of one line; None (and a report) when its quoting is broken."""
        if '"' not in text:
            return text.split(",")
        try:
            return next(csv.reader((text,), strict=True))
        except (csv.Error, StopIteration):
            self._report.add(
                self._line,
                None,
                "BAD_QUOTING",
                'a quoted field is not closed or has text after its closing quote (write " as "")',
            )
            return None

    def _fields_are_safe(self, fields: list[str]) -> bool:
        ok = True
        for column, value in zip(self.columns, fields, strict=True):
            code = field_hazard(value)
            if code == "FORMULA_INJECTION":
                self._report.add(
                    self._line,
                    column,
                    code,
                    "a field may not start with =, +, -, @, a tab or a CR "
                    "(a spreadsheet would run it as a formula)",
                )
                ok = False
            elif code == "BAD_CHARACTER":
                self._report.add(
                    self._line, column, code, "the field holds a control character (NUL, tab, ...)"
                )
                ok = False
        return ok


def field_hazard(value: str) -> str | None:
    """``FORMULA_INJECTION``, ``BAD_CHARACTER`` or None for one field's text."""
    if value.lstrip(" ")[:1] in _FORMULA_START:
        return "FORMULA_INJECTION"
    if _CONTROL.search(value):
        return "BAD_CHARACTER"
    return None


def check_header(
    line: int, found: list[str], expected: tuple[str, ...], report: ErrorReport
) -> None:
    """Report how a header differs from ``expected`` (names, duplicates, then order)."""
    seen: set[str] = set()
    known = set(expected)
    for name in found:
        if name in seen:
            report.add(line, name, "DUPLICATE_COLUMN", f"the column {name!r} appears twice")
        elif name not in known:
            report.add(line, name, "UNKNOWN_COLUMN", f"there is no column {name!r}")
        seen.add(name)
    for name in expected:
        if name not in seen:
            report.add(line, name, "MISSING_COLUMN", f"the column {name!r} is missing")
    if not report and tuple(found) != expected:
        report.add(
            line, None, "COLUMN_ORDER", "the columns must come in the order: " + ",".join(expected)
        )
