"""Vaccine lot codes: GS1 element strings on vials and cartons (DataMatrix, QR, Code 128, DataBar).

The symbol is decoded with zxing-cpp in plain-text mode, so a GS1 symbol's FNC1 separators
arrive as the GS character (0x1D). :func:`parse_gs1` then reads the element string itself:
AI 01 (GTIN, check digit verified), 17 (expiry, YYMMDD; day 00 means the month's last day),
10 (lot), 21 (serial), and skips other AIs by their GS1 lengths. It also takes the bracketed
human form ``(01)…(17)…(10)…`` and text that still carries a symbology identifier
(``]d2``, ``]Q3``, ``]C1``, ``]e0``) as a keyboard-wedge scanner types it.

:class:`GtinTable` maps GTINs to EU product codes (``mp``, e.g. ``EU/1/20/1528``); load one
from JSON (``{"gtin": "product", …}`` or ``[{"gtin": …, "product": …}, …]``) or CSV (columns
``gtin,product``).
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from scanner._barcodes import lot_symbols
from scanner._images import load_image, to_grey
from scanner.checkdigits import is_valid_gtin
from scanner.errors import GtinTableError

__all__ = ["Gs1Error", "GtinTable", "LotRead", "lot_from_text", "parse_gs1", "read_lot"]

GS = "\x1d"
GS1_SYMBOLOGIES = {"]d2", "]Q3", "]C1", "]e0", "]J1"}  # AIM identifiers of GS1 symbols
# AIs whose data has a predefined length (GS1 General Specifications, figure 7.8.5-2):
# keyed by the AI's first two digits, value = AI length + data length.
_PREDEFINED = {
    "00": 20, "01": 16, "02": 16, "03": 16, "04": 18, "11": 8, "12": 8, "13": 8, "14": 8,
    "15": 8, "16": 8, "17": 8, "18": 8, "19": 8, "20": 4, "31": 10, "32": 10, "33": 10,
    "34": 10, "35": 10, "36": 10, "41": 16,
}  # fmt: skip
_TWO_DIGIT_AIS = {f"{n:02d}" for n in (*range(0, 23), 30, 37, *range(90, 100))}
_FOUR_DIGIT_PREFIXES = {"31", "32", "33", "34", "35", "36", "39", "70", "80", "81", "82"}
_MAX_TEXT = 512
_BRACKETED = re.compile(r"\((\d{2,4})\)([^()]*)")


class Gs1Error(ValueError):
    """Text that is not a well-formed GS1 element string (``code`` is stable)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class LotRead:
    gtin: str  # 14 digits
    lot: str | None
    expiry: date | None
    serial: str | None
    product: str | None  # EU product code from the GTIN table, or None
    symbology: str  # zxing's format name ("DataMatrix", "QRCode", "Code128", "DataBarOmni",
    # "DataBarExp", ...), or "text" for text handed to lot_from_text
    raw: str  # the decoded text, FNC1 as GS


def _ai_length(text: str) -> int:
    prefix = text[:2]
    if prefix in _TWO_DIGIT_AIS:
        return 2
    if prefix in _FOUR_DIGIT_PREFIXES:
        return 4
    return 3


def _element_string(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    i = 0
    while i < len(text):
        if text[i] == GS:
            i += 1
            continue
        head = text[i : i + 4]
        if len(head) < 2 or not head[:2].isdigit():
            raise Gs1Error("BAD_GS1", f"no application identifier at position {i}")
        fixed = _PREDEFINED.get(head[:2])
        ai_len = _ai_length(head)
        ai = text[i : i + ai_len]
        if not (len(ai) == ai_len and ai.isdigit()):
            raise Gs1Error("BAD_GS1", f"truncated application identifier at position {i}")
        if fixed is not None:
            end = i + fixed
            if end > len(text) or GS in text[i:end]:
                raise Gs1Error("BAD_GS1", f"AI ({ai}) is shorter than its fixed length")
        else:
            end = text.find(GS, i)
            end = len(text) if end < 0 else end
        value = text[i + ai_len : end]
        if ai in fields:
            raise Gs1Error("BAD_GS1", f"AI ({ai}) occurs twice")
        fields[ai] = value
        i = end
    return fields


def parse_gs1(text: str) -> dict[str, str]:
    """The AIs of a GS1 element string (raw with GS separators, or bracketed) as a dict."""
    if len(text) > _MAX_TEXT:
        raise Gs1Error("GS1_TOO_LONG", f"{len(text)} characters is over {_MAX_TEXT}")
    if text[:1] == "]" and len(text) >= 3:
        text = text[3:]
    text = text.strip().removeprefix(GS)
    if not text:
        raise Gs1Error("BAD_GS1", "empty element string")
    if text.startswith("("):
        pairs = _BRACKETED.findall(text)
        if "".join(f"({a}){v}" for a, v in pairs) != text:
            raise Gs1Error("BAD_GS1", "malformed bracketed element string")
        fields: dict[str, str] = {}
        for ai, value in pairs:
            if ai in fields:
                raise Gs1Error("BAD_GS1", f"AI ({ai}) occurs twice")
            fields[ai] = value
        return fields
    return _element_string(text)


def _expiry(value: str) -> date:
    if not (len(value) == 6 and value.isdigit()):
        raise Gs1Error("BAD_EXPIRY", f"AI (17) must be YYMMDD, not {value!r}")
    # Vaccines in this system are made from 2020 on, so YY is 20YY (GS1's sliding century
    # window gives the same years until 2049 and needs a clock, which a reader should not).
    year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:])
    if not 1 <= month <= 12:
        raise Gs1Error("BAD_EXPIRY", f"AI (17) month {month} does not exist")
    last = calendar.monthrange(year, month)[1]
    if day == 0:
        day = last
    if day > last:
        raise Gs1Error("BAD_EXPIRY", f"AI (17) day {day} does not exist in {year}-{month:02d}")
    return date(year, month, day)


def _text_field(fields: Mapping[str, str], ai: str) -> str | None:
    value = fields.get(ai)
    if value is None:
        return None
    if not 1 <= len(value) <= 20 or not value.isprintable() or not value.isascii():
        raise Gs1Error("BAD_GS1", f"AI ({ai}) must be 1-20 printable ASCII characters")
    return value


class GtinTable:
    """GTIN → EU product code. GTIN-8/12/13 keys are stored as GTIN-14 (zero-padded)."""

    def __init__(self, entries: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        items = entries.items() if isinstance(entries, Mapping) else entries
        self._products: dict[str, str] = {}
        for gtin, product in items:
            if not isinstance(gtin, str) or not is_valid_gtin(gtin.strip()):
                raise GtinTableError(
                    "BAD_GTIN_TABLE", f"{gtin!r} is not a GTIN with its check digit"
                )
            if not isinstance(product, str) or not product.strip() or len(product) > 64:
                raise GtinTableError("BAD_GTIN_TABLE", f"bad product code for GTIN {gtin}")
            self._products[gtin.strip().zfill(14)] = product.strip()

    def product(self, gtin: str) -> str | None:
        return self._products.get(gtin.zfill(14))

    def __len__(self) -> int:
        return len(self._products)

    @classmethod
    def load(cls, path: str | Path) -> GtinTable:
        """Read a ``.json`` or ``.csv`` table (see the module docstring for the shapes)."""
        path = Path(path)
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GtinTableError("BAD_GTIN_TABLE", f"cannot read {path}: {exc}") from None
        if path.suffix.lower() == ".json":
            return cls.from_json(text)
        if path.suffix.lower() == ".csv":
            return cls.from_csv(text)
        raise GtinTableError("BAD_GTIN_TABLE", f"{path.name}: expected a .json or .csv file")

    @classmethod
    def from_json(cls, text: str) -> GtinTable:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise GtinTableError("BAD_GTIN_TABLE", f"not JSON: {exc}") from None
        if isinstance(data, dict):
            return cls(data)
        if isinstance(data, list) and all(isinstance(row, dict) for row in data):
            return cls((row.get("gtin"), row.get("product")) for row in data)
        raise GtinTableError("BAD_GTIN_TABLE", "expected an object or a list of objects")

    @classmethod
    def from_csv(cls, text: str) -> GtinTable:
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or not {"gtin", "product"} <= set(reader.fieldnames):
            raise GtinTableError("BAD_GTIN_TABLE", "the CSV needs the columns gtin,product")
        return cls((row["gtin"], row["product"]) for row in reader)


def _table(gtin_table: GtinTable | Mapping[str, str] | str | Path | None) -> GtinTable | None:
    if gtin_table is None or isinstance(gtin_table, GtinTable):
        return gtin_table
    if isinstance(gtin_table, str | Path):
        return GtinTable.load(gtin_table)
    if isinstance(gtin_table, Mapping):
        return GtinTable(gtin_table)
    raise GtinTableError("BAD_GTIN_TABLE", f"not a GTIN table: {type(gtin_table).__name__}")


def lot_from_text(
    text: str,
    *,
    symbology: str = "text",
    aim: str = "",
    gs1: bool = False,
    gtin_table: GtinTable | None = None,
) -> LotRead | None:
    """A lot read from decoded text, or None when it is not GS1 data with a valid GTIN.

    Text from a symbol not flagged GS1 is accepted only in the bracketed form or when it
    starts with AI 01 and its GTIN's check digit holds (a plain Code 128 label).
    """
    prefixed = text[:1] == "]" and text[:3] in GS1_SYMBOLOGIES
    gs1 = gs1 or aim in GS1_SYMBOLOGIES or prefixed
    try:
        fields = parse_gs1(text)
        gtin = fields.get("01")
        if gtin is None or not (len(gtin) == 14 and is_valid_gtin(gtin)):
            return None
        if not gs1 and not text.lstrip().startswith(("(", "01")):
            return None
        expiry = _expiry(fields["17"]) if "17" in fields else None
        lot, serial = _text_field(fields, "10"), _text_field(fields, "21")
    except Gs1Error:
        return None
    product = gtin_table.product(gtin) if gtin_table is not None else None
    return LotRead(gtin, lot, expiry, serial, product, symbology, text)


def read_lot(
    image: object, gtin_table: GtinTable | Mapping[str, str] | str | Path | None = None
) -> LotRead | None:
    """Read the GS1 code on a vial or carton in ``image`` (array, encoded bytes or path).

    Returns the first symbol that holds GS1 data with a valid GTIN, or None.
    """
    table = _table(gtin_table)
    grey = to_grey(load_image(image))
    for symbol in lot_symbols(grey):
        read = lot_from_text(
            symbol.text,
            symbology=symbol.format,
            aim=symbol.symbology,
            gs1=symbol.gs1,
            gtin_table=table,
        )
        if read is not None:
            return read
    return None
