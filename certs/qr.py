"""QR codes of a certificate: alphanumeric mode, error correction Q, as PNG and SVG.

``HC1:`` texts use only base45's 45 characters, which are exactly the QR alphanumeric set, so
the whole text is one alphanumeric segment (5.5 bits a character instead of 8). The symbol
matrix comes from zxing-cpp's encoder (C++; about 2 ms for a certificate, where the pure-Python
encoders take 25–35 ms); the tests cross-check it module for module against the ``qrcode``
package forced to alphanumeric mode and level Q. PNG and SVG are written here from the pixels:
a 1-bit greyscale PNG and a single-path SVG.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any, cast

import zxingcpp

from certs.errors import RenderError

#: The QR alphanumeric character set (ISO/IEC 18004 table 5) — also base45's alphabet.
ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
#: Alphanumeric capacity of the largest symbol (version 40) at level Q.
MAX_QR_CHARACTERS = 2420
#: The quiet zone the standard asks for, in modules.
QUIET_ZONE = 4
MAX_SCALE = 40


@dataclass(frozen=True)
class QrMatrix:
    """The modules of a symbol, without quiet zone: ``rows[y][x]`` is 1 for dark, 0 for light."""

    size: int
    rows: tuple[bytes, ...]


_DARK_IS_ONE = bytes.maketrans(b"\x00\xff", b"\x01\x00")
_PNG_BITS = bytes.maketrans(b"\x00\xff", b"01")  # PNG greyscale: 0 is black


def _pixels(text: str, scale: int) -> tuple[int, bytes]:
    """zxing-cpp's rendering of ``text`` at level Q, no quiet zone: (side, 8-bit pixels)."""
    if not isinstance(text, str) or not text:
        raise RenderError("BAD_QR_TEXT", "the QR text must be non-empty text")
    if len(text) > MAX_QR_CHARACTERS:
        raise RenderError("QR_TOO_LONG", f"at most {MAX_QR_CHARACTERS} characters fit at level Q")
    if not ALPHANUMERIC.issuperset(text):
        raise RenderError("BAD_QR_TEXT", "only QR alphanumeric characters (an HC1 text) allowed")
    try:
        barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="Q")
        image = barcode.to_image(scale=scale, add_quiet_zones=False)
    except (ValueError, RuntimeError) as exc:  # zxing-cpp's own refusal, e.g. too long
        raise RenderError("QR_TOO_LONG", f"the QR encoder refused the text: {exc}") from exc
    # zxing-cpp's Image exposes the buffer protocol; its type stubs do not say so.
    view = memoryview(cast(Any, image))
    height, width = view.shape or (0, 0)
    if width != height or width < 21 * scale:  # pragma: no cover - zxing-cpp contract
        raise RenderError("QR_ENCODER", "the QR encoder returned no square symbol")
    return width, view.tobytes()


def qr_matrix(text: str) -> QrMatrix:
    """Encode ``text`` (QR alphanumeric characters only, e.g. an ``HC1:`` text) at level Q."""
    side, pixels = _pixels(text, 1)
    modules = pixels.translate(_DARK_IS_ONE)
    return QrMatrix(side, tuple(modules[y * side : (y + 1) * side] for y in range(side)))


def _check_layout(scale: int, border: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise RenderError("BAD_SCALE", f"scale is 1..{MAX_SCALE} pixels a module")
    if isinstance(border, bool) or not isinstance(border, int) or not 0 <= border <= 16:
        raise RenderError("BAD_SCALE", "border is 0..16 modules")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def qr_png(text: str, *, scale: int = 4, border: int = QUIET_ZONE) -> bytes:
    """The QR code as a 1-bit greyscale PNG, ``scale`` pixels a module, ``border`` modules of
    quiet zone (the standard's 4 by default)."""
    _check_layout(scale, border)
    width, pixels = _pixels(text, scale)
    side = width + 2 * border * scale
    row_bytes = (side + 7) // 8
    pad = "1" * (row_bytes * 8 - side)
    margin = "1" * (border * scale)
    blank = b"\x00" + int("1" * side + pad, 2).to_bytes(row_bytes, "big")
    lines = [blank] * (border * scale)
    for y in range(0, width, scale):
        pixel_row = pixels[y * width : (y + 1) * width].translate(_PNG_BITS).decode("ascii")
        line = b"\x00" + int(margin + pixel_row + margin + pad, 2).to_bytes(row_bytes, "big")
        lines.extend([line] * scale)
    lines.extend([blank] * (border * scale))
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(lines), 6))
        + _png_chunk(b"IEND", b"")
    )


def qr_svg(text: str, *, scale: int = 4, border: int = QUIET_ZONE) -> str:
    """The QR code as a standalone SVG: one path of the dark runs, in module units."""
    _check_layout(scale, border)
    matrix = qr_matrix(text)
    side = matrix.size + 2 * border
    parts: list[str] = []
    for y, row in enumerate(matrix.rows):
        x = 0
        while x < matrix.size:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < matrix.size and row[x]:
                x += 1
            parts.append(f"M{start + border} {y + border}h{x - start}v1h-{x - start}z")
    pixels = side * scale
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{pixels}" height="{pixels}" '
        f'viewBox="0 0 {side} {side}" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(parts)}"/></svg>\n'
    )
