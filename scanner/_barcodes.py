"""Barcode decoding: zxing-cpp, and pyzbar as a fallback where libzbar is installed."""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import numpy.typing as npt
import zxingcpp


@dataclass(frozen=True)
class Symbol:
    text: str  # zxing's plain text (GS1: FNC1 as GS)
    format: str  # "QRCode", "DataMatrix", "Code128", "DataBar", ...
    symbology: str  # the AIM identifier, e.g. "]Q3", "]d2", "]C1", "]e0"
    gs1: bool = False  # the symbol says it holds GS1 data (FNC1 in first position)


_COUPON_FORMATS = zxingcpp.BarcodeFormats([zxingcpp.BarcodeFormat.QRCode])
_LOT_FORMATS = zxingcpp.BarcodeFormats(
    [
        zxingcpp.BarcodeFormat.DataMatrix,
        zxingcpp.BarcodeFormat.QRCode,
        zxingcpp.BarcodeFormat.Code128,
        zxingcpp.BarcodeFormat.DataBar,
        zxingcpp.BarcodeFormat.DataBarExp,
        zxingcpp.BarcodeFormat.DataBarLtd,
    ]
)


def _zxing(grey: npt.NDArray[np.uint8], formats: zxingcpp.BarcodeFormats) -> list[Symbol]:
    found = zxingcpp.read_barcodes(
        grey, formats=formats, text_mode=zxingcpp.TextMode.Plain, try_invert=False
    )
    gs1 = zxingcpp.ContentType.GS1
    return [
        Symbol(r.text, r.format.name, r.symbology_identifier, r.content_type == gs1)
        for r in found
        if r.valid
    ]


_log = logging.getLogger("scanner")

#: Said once when the ``zbar`` extra is installed without the library it needs.
ZBAR_MISSING = (
    "pyzbar is installed but the zbar system library is not (Debian/Ubuntu: apt-get install "
    "libzbar0; macOS: brew install zbar): the pyzbar fallback for QR codes is off"
)


@functools.cache
def _pyzbar() -> ModuleType | None:
    """pyzbar's decoder, or None when the package or the libzbar0 library is missing."""
    if importlib.util.find_spec("pyzbar") is None:
        return None  # the optional extra is not installed: nothing to say
    try:
        from pyzbar import pyzbar  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except (ImportError, OSError):  # the package is there, but not the system library
        _log.warning(ZBAR_MISSING)
        return None
    return pyzbar  # type: ignore[no-any-return,unused-ignore]


_ZBAR_NAMES = {
    "QRCODE": ("QRCode", "]Q1"),
    "CODE128": ("Code128", "]C0"),
    "DATABAR": ("DataBarOmni", "]e0"),
    "DATABAR_EXP": ("DataBarExp", "]e0"),
}


def _zbar(grey: npt.NDArray[np.uint8], wanted: frozenset[str]) -> list[Symbol]:
    zbar = _pyzbar()
    if zbar is None:
        return []
    symbols = []
    for r in zbar.decode(grey):
        name, aim = _ZBAR_NAMES.get(r.type, (r.type, ""))
        if name in wanted:
            symbols.append(Symbol(r.data.decode("utf-8", "replace"), name, aim))
    return symbols


def zbar_available() -> bool:
    return _pyzbar() is not None


def coupon_symbols(grey: npt.NDArray[np.uint8]) -> list[Symbol]:
    """QR codes in the frame; pyzbar is asked only when zxing-cpp found none."""
    return _zxing(grey, _COUPON_FORMATS) or _zbar(grey, frozenset({"QRCode"}))


def lot_symbols(grey: npt.NDArray[np.uint8]) -> list[Symbol]:
    """GS1-capable symbols in the frame (DataMatrix, QR, Code 128, DataBar)."""
    wanted = frozenset({"QRCode", "Code128", "DataBarOmni", "DataBarExp"})
    return _zxing(grey, _LOT_FORMATS) or _zbar(grey, wanted)
