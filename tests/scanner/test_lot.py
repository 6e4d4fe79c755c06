"""read_lot: GS1 symbols made by zxing-cpp's writer, photographed, read back by its reader."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import zxingcpp

from scanner import (
    Gs1Error,
    GtinTable,
    GtinTableError,
    lot_from_text,
    parse_gs1,
    read_lot,
)
from scanner.synth import Distortion, photograph

GTIN = "04987123456784"  # check digit 4 (GS1 mod 10)
COMIRNATY = "EU/1/20/1528"
TABLE = {GTIN: COMIRNATY}
GENTLE = Distortion("label", (6.0, 7.0), 4.0, 0.01, (0.4, 0.7), 3.0, 0.1, False, (90, 92), 0.0)


def _label(content: str, fmt: str, *, gs1: bool = True) -> npt.NDArray[np.uint8]:
    """A printed label: 4 px per module; photographed at 6 px per mm, a module is 0.67 mm."""
    symbol = zxingcpp.create_barcode(content, getattr(zxingcpp.BarcodeFormat, fmt), gs1=gs1)
    modules = np.array(zxingcpp.write_barcode_to_image(symbol, scale=1, add_quiet_zones=True))
    big = cv2.resize(modules, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    label = np.full((big.shape[0] + 80, big.shape[1] + 80), 255, np.uint8)
    label[40:-40, 40:-40] = big
    return np.asarray(cv2.cvtColor(label, cv2.COLOR_GRAY2BGR), np.uint8)


@pytest.mark.parametrize(
    ("fmt", "content", "expected"),
    [
        (
            "DataMatrix",
            f"(01){GTIN}(17)260531(10)FK1234(21)SN0001",
            (date(2026, 5, 31), "FK1234", "SN0001"),
        ),
        ("QRCode", f"(01){GTIN}(17)260500(10)FK1234", (date(2026, 5, 31), "FK1234", None)),
        ("Code128", f"(01){GTIN}(17)270228(10)AB-77", (date(2027, 2, 28), "AB-77", None)),
        ("DataBarExp", f"(01){GTIN}(17)251231(10)L9", (date(2025, 12, 31), "L9", None)),
    ],
)
def test_gs1_symbols_are_read_from_a_camera_frame(
    fmt: str, content: str, expected: tuple[date, str, str | None]
) -> None:
    frame = photograph(_label(content, fmt), source_px_per_mm=6.0, level=GENTLE, seed=11)
    read = read_lot(frame, gtin_table=TABLE)
    assert read is not None
    assert (read.gtin, read.expiry, read.lot, read.serial) == (GTIN, *expected)
    assert read.product == COMIRNATY
    assert read.symbology == fmt


def test_databar_omni_carries_the_gtin_only() -> None:
    frame = _label(f"(01){GTIN}", "DataBar", gs1=False)
    read = read_lot(frame)
    assert read is not None
    assert (read.gtin, read.lot, read.expiry, read.product) == (GTIN, None, None, None)


def test_a_plain_qr_with_the_bracketed_human_form_is_read() -> None:
    read = read_lot(_label(f"(01){GTIN}(10)ABC(17)261130", "QRCode", gs1=False))
    assert read is not None and (read.lot, read.expiry) == ("ABC", date(2026, 11, 30))


def test_a_wrong_gtin_check_digit_is_not_a_read() -> None:
    assert read_lot(_label("(01)04987123456782(10)FK1234", "QRCode", gs1=False)) is None


def test_a_coupon_qr_is_not_a_lot() -> None:
    assert read_lot(_label("111310161234567890", "QRCode", gs1=False)) is None


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (
            f"01{GTIN}1726053110FK1234\x1d21SN1",
            {"01": GTIN, "17": "260531", "10": "FK1234", "21": "SN1"},
        ),
        (f"]d201{GTIN}10LOT\x1d17260531", {"01": GTIN, "10": "LOT", "17": "260531"}),
        (f"]Q3\x1d01{GTIN}21X", {"01": GTIN, "21": "X"}),
        (f"]C101{GTIN}3103000125", {"01": GTIN, "3103": "000125"}),
        (f"(01){GTIN}(17)260531(10)A B", {"01": GTIN, "17": "260531", "10": "A B"}),
        (f"01{GTIN}240PART-9\x1d10L1", {"01": GTIN, "240": "PART-9", "10": "L1"}),
    ],
)
def test_parse_gs1(text: str, fields: dict[str, str]) -> None:
    assert parse_gs1(text) == fields


@pytest.mark.parametrize(
    "text",
    [
        "",
        "]d2",
        f"01{GTIN[:-2]}",  # fixed-length AI cut short
        f"01{GTIN}10A\x1d10B",  # AI twice
        "(01)123(10",  # broken brackets
        "ABC",
        "0" * 600,
    ],
)
def test_parse_gs1_refuses(text: str) -> None:
    with pytest.raises(Gs1Error):
        parse_gs1(text)


@pytest.mark.parametrize(
    "text",
    [
        f"01{GTIN}17261331",  # month 13
        f"01{GTIN}17260230",  # 30 February
        f"01{GTIN}10" + "L" * 21,  # lot over 20 characters
        "0104987123456782",  # check digit
        "11260101",  # no GTIN
    ],
)
def test_bad_values_are_not_reads(text: str) -> None:
    assert lot_from_text(text, gs1=True) is None


def test_plain_digits_need_ai_01_first_to_count_as_gs1() -> None:
    assert lot_from_text(f"10LOT\x1d01{GTIN}") is None
    assert lot_from_text(f"10LOT\x1d01{GTIN}", gs1=True) is not None
    assert lot_from_text(f"01{GTIN}10LOT") is not None


def test_gtin_tables_load_from_json_and_csv(tmp_path: Path) -> None:
    as_object = tmp_path / "a.json"
    as_object.write_text(json.dumps({GTIN: COMIRNATY, "4987123456784": "x"}))
    as_list = tmp_path / "b.json"
    as_list.write_text(json.dumps([{"gtin": GTIN, "product": COMIRNATY}]))
    as_csv = tmp_path / "c.csv"
    as_csv.write_text(f"gtin,product\n{GTIN},{COMIRNATY}\n")
    for path in (as_object, as_list, as_csv):
        table = GtinTable.load(path)
        assert table.product(GTIN) == table.product(GTIN.lstrip("0")) != None  # noqa: E711
    assert len(GtinTable.load(as_object)) == 1  # GTIN-13 and GTIN-14 of one item are one key
    frame = _label(f"(01){GTIN}(10)L", "QRCode")
    read = read_lot(frame, gtin_table=as_csv)
    assert read is not None and read.product == COMIRNATY


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("t.json", "{not json"),
        ("t.json", "[1, 2]"),
        ("t.json", json.dumps({"04987123456782": "x"})),  # check digit
        ("t.json", json.dumps({GTIN: ""})),
        ("t.csv", "code,name\n1,2\n"),
        ("t.txt", "{}"),
    ],
)
def test_bad_gtin_tables_raise(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(GtinTableError) as caught:
        GtinTable.load(path)
    assert caught.value.code == "BAD_GTIN_TABLE"


def test_a_missing_table_file_and_a_wrong_type_raise(tmp_path: Path) -> None:
    with pytest.raises(GtinTableError):
        read_lot(_label(f"(01){GTIN}", "QRCode"), gtin_table=tmp_path / "none.json")
    with pytest.raises(GtinTableError):
        read_lot(_label(f"(01){GTIN}", "QRCode"), gtin_table=42)  # type: ignore[arg-type]
