"""Streaming, all-or-nothing CSV imports: read, check and report bad rows of a large file.

An import reads a UTF-8 CSV file once, never holding it whole: the caller spools the
upload to a temporary file and hands the open binary file here. The pieces:

- :class:`PhysicalLines` reads the file in 1 MiB blocks and cuts it into text lines,
  marking (and skipping in bounded memory) lines that are too long or not UTF-8.
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
from enum import Enum
from itertools import chain
from typing import Any, BinaryIO

from vrs.domain.errors import Unprocessable

_BOM = "\ufeff"
_FORMULA_START = frozenset("=+-@\t\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


class BadLine(Enum):
    """Why a physical line could not be read as text (it has been reported)."""

    TOO_LONG = "LINE_TOO_LONG"
    NOT_UTF8 = "BAD_ENCODING"


#: One physical line: its text without the line break, or why there is none.
LineText = str | BadLine


class PhysicalLines:
    """The lines of a binary file as text, a block of lines at a time, in bounded memory.

    Reads ``block_bytes`` at a time and splits on ``\\n`` (dropping a ``\\r`` before it). A line
    longer than ``max_line_bytes`` comes out as :attr:`BadLine.TOO_LONG` and is skipped
    without ever being held whole; a line that is not UTF-8 as :attr:`BadLine.NOT_UTF8`.
    """

    def __init__(self, body: BinaryIO, *, max_line_bytes: int, block_bytes: int = 1 << 20) -> None:
        self._body = body
        self._limit = max_line_bytes
        self._block = max(block_bytes, 1)

    def blocks(self) -> Iterator[list[LineText]]:
        read = self._body.read
        limit = self._limit
        carry = b""
        skipping = False
        while chunk := read(self._block):
            if skipping:
                end_of_long = chunk.find(b"\n")
                if end_of_long < 0:
                    continue
                chunk = chunk[end_of_long + 1 :]
                skipping = False
            data = carry + chunk if carry else chunk
            last = data.rfind(b"\n")
            carry = data[last + 1 :]
            if last >= 0:
                yield self._decode(data[:last])
            if len(carry) > limit + 1:  # + 1: a CR that may precede the coming LF
                yield [BadLine.TOO_LONG]
                carry = b""
                skipping = True
        if carry:
            yield self._decode(carry)

    def _decode(self, data: bytes) -> list[LineText]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return [self._decode_one(raw) for raw in data.split(b"\n")]
        lines = text.split("\n")
        if "\r" in text:
            lines = [t[:-1] if t[-1:] == "\r" else t for t in lines]
        # A character is at most 4 bytes: only lines that long in characters need a count.
        if max(map(len, lines)) * 4 <= self._limit:
            return list(lines)
        return [self._within_limit(t) for t in lines]

    def _decode_one(self, raw: bytes) -> LineText:
        raw = raw.removesuffix(b"\r")
        if len(raw) > self._limit:
            return BadLine.TOO_LONG
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return BadLine.NOT_UTF8

    def _within_limit(self, text: str) -> LineText:
        too_long = len(text) * 4 > self._limit and len(text.encode("utf-8")) > self._limit
        return BadLine.TOO_LONG if too_long else text


_BAD_LINE_MESSAGES = {
    BadLine.TOO_LONG: "the line is longer than {limit} bytes",
    BadLine.NOT_UTF8: "the line is not UTF-8; save the file as UTF-8",
}


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
        self.columns = columns
        self._max_line_bytes = max_line_bytes
        self._blocks = PhysicalLines(body, max_line_bytes=max_line_bytes).blocks()
        self._pending: list[LineText] = []
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
        for block in self._blocks:
            for index, text in enumerate(block):
                self._line += 1
                if isinstance(text, BadLine):
                    self._report_bad_line(text)
                    self._report.raise_if_any()
                    continue
                if self._line == 1:
                    text = text.removeprefix(_BOM)
                if not text.strip():
                    continue
                self._pending = block[index + 1 :]
                self._check_header(text)
                return
        raise empty_file()

    def _check_header(self, text: str) -> None:
        fields = self._split(text)
        if fields is not None:
            check_header(self._line, [f.strip() for f in fields], self.columns, self._report)
        self._report.raise_if_any()

    def _report_bad_line(self, bad: BadLine) -> None:
        message = _BAD_LINE_MESSAGES[bad].format(limit=self._max_line_bytes)
        self._report.add(self._line, None, bad.value, message)

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        width = len(self.columns)
        report = self._report
        line = self._line
        for block in chain((self._pending,), self._blocks):
            for text in block:
                line += 1
                if isinstance(text, BadLine):
                    self.rows += 1
                    self._line = line
                    self._report_bad_line(text)
                    continue
                if not text or (text[0] == "," and not text.strip(", ")):
                    continue  # blank, or the empty row a spreadsheet leaves
                self.rows += 1
                careful = _needs_care(text)
                if careful:
                    self._line = line
                    maybe = self._split(text)
                    if maybe is None:
                        continue
                    fields = maybe
                else:
                    fields = text.split(",")
                if len(fields) != width:
                    report.add(
                        line,
                        None,
                        "WRONG_FIELD_COUNT",
                        f"expected {width} fields, found {len(fields)}",
                    )
                    continue
                if careful and not self._fields_are_safe(fields):
                    continue
                yield line, fields
        self._line = line
        if self.rows == 0:
            raise empty_file()

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


def _needs_care(text: str) -> bool:
    """Whether a line needs more than ``split(",")``: quotes, control characters (or any
    non-printable character), or a field that may start like a formula."""
    return (
        not text.isprintable()
        or '"' in text
        or text[0] in _FORMULA_START
        or text[0] == " "
        or ",=" in text
        or ",+" in text
        or ",-" in text
        or ",@" in text
        or ", " in text
    )


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
