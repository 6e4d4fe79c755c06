"""Coupon tickets (接種券): the 18-digit line in OCR-B 9 pt at true size, its QR code, and print.

:func:`coupon_layout` places every element of a ticket in millimetres; :func:`render_coupon`
rasterises that layout at any DPI into a numpy BGR image (``coupon_png`` encodes it). A PDF
coupon sheet can draw the same layout with :func:`certs.ocrb.text_outlines` for the line and
:func:`qr_modules` for the QR code, so paper and screen coupons come from one description.

Legacy tickets (printed before this system) carry no QR code; pass ``with_qr=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import segno

from certs.ocrb import MM_PER_PT, line_width_mm, load_atlas, render_text

__all__ = [
    "LINE_SIZE_PT",
    "QR_SIZE_MM",
    "TICKET_SIZE_MM",
    "CouponError",
    "CouponLayout",
    "CouponTicket",
    "coupon_layout",
    "coupon_png",
    "qr_modules",
    "render_coupon",
]

TICKET_SIZE_MM = (90.0, 50.0)  # width, height
LINE_SIZE_PT = 9.0
QR_SIZE_MM = 10.0  # the symbol without its quiet zone
_MAX_DPI = 2400


class CouponError(ValueError):
    """A ticket that cannot be printed (bad line, unprintable text, absurd DPI)."""


@dataclass(frozen=True)
class CouponTicket:
    """What a ticket prints. ``line`` is the 18 digits; names are printed as Latin text."""

    line: str
    holder_name: str = "YAMADA TARO"
    municipality_name: str = "CHIYODA CITY"
    issued_on: str = "2022-03-01"
    with_qr: bool = True

    def __post_init__(self) -> None:
        if not (len(self.line) == 18 and self.line.isascii() and self.line.isdigit()):
            raise CouponError("a coupon line is exactly 18 ASCII digits")
        for text in (self.holder_name, self.municipality_name, self.issued_on):
            if not text.isascii() or len(text) > 40:
                raise CouponError("ticket texts are at most 40 ASCII characters")


@dataclass(frozen=True)
class CouponLayout:
    """Where each element sits, in mm from the ticket's top-left corner."""

    size_mm: tuple[float, float]
    line_origin_mm: tuple[float, float]  # left end of the OCR-B line's baseline
    line_box_mm: tuple[float, float, float, float]  # x, y, width, height of the line's ink
    qr_box_mm: tuple[float, float, float, float] | None  # the symbol, quiet zone excluded


def qr_modules(line: str) -> npt.NDArray[np.bool_]:
    """The QR code (Model 2, error correction M) of the 18 digits: True = dark module."""
    qr = segno.make_qr(line, error="m", boost_error=False)
    return np.array(list(qr.matrix), dtype=np.uint8).astype(bool)


def coupon_layout(ticket: CouponTicket) -> CouponLayout:
    width, height = TICKET_SIZE_MM
    atlas = load_atlas()
    ink_height = atlas.ink_top / atlas.units_per_em * LINE_SIZE_PT * MM_PER_PT
    line_x, baseline_y = 6.0, height - 7.0
    line_box = (line_x, baseline_y - ink_height, line_width_mm(ticket.line), ink_height)
    qr_box = (width - 6.0 - QR_SIZE_MM, 17.0, QR_SIZE_MM, QR_SIZE_MM) if ticket.with_qr else None
    return CouponLayout(TICKET_SIZE_MM, (line_x, baseline_y), line_box, qr_box)


def _hershey(
    canvas: npt.NDArray[np.uint8], text: str, at_mm: tuple[float, float], size_mm: float, k: float
) -> None:
    scale = size_mm * k / 22.0  # Hershey simplex capitals are about 22 px tall at scale 1
    thickness = max(1, round(size_mm * k * 0.09))
    org = (round(at_mm[0] * k), round(at_mm[1] * k))
    cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 0, thickness, cv2.LINE_AA)


def _draw_clutter(canvas: npt.NDArray[np.uint8], ticket: CouponTicket, k: float) -> None:
    """Printed matter around the line, as on real tickets: frame, headings, fields, rules."""
    width, height = TICKET_SIZE_MM
    line = max(1, round(0.25 * k))

    def mm(x: float, y: float) -> tuple[int, int]:
        return (round(x * k), round(y * k))

    cv2.rectangle(canvas, mm(1.5, 1.5), mm(width - 1.5, height - 1.5), 0, line)
    cv2.rectangle(canvas, mm(1.5, 1.5), mm(width - 1.5, 8.5), 215, -1)
    _hershey(canvas, "COVID-19 VACCINATION TICKET", (4.0, 6.5), 3.2, k)
    _hershey(canvas, ticket.municipality_name, (4.0, 14.0), 2.6, k)
    _hershey(canvas, "NAME", (4.0, 20.5), 1.8, k)
    _hershey(canvas, ticket.holder_name, (14.0, 21.0), 3.0, k)
    cv2.line(canvas, mm(13.0, 22.5), mm(62.0, 22.5), 0, line)
    _hershey(canvas, "ISSUED", (4.0, 27.5), 1.8, k)
    _hershey(canvas, ticket.issued_on, (14.0, 28.0), 2.4, k)
    _hershey(canvas, "DOSE", (44.0, 27.5), 1.8, k)
    _hershey(canvas, ticket.line[1], (54.0, 28.0), 2.4, k)
    cv2.rectangle(canvas, mm(4.0, 31.0), mm(62.0, 36.0), 0, line)
    _hershey(canvas, "PLACE THE VACCINATION RECORD STICKER HERE", (5.0, 34.5), 1.6, k)
    for x in np.arange(2.5, width - 2.5, 2.0):  # cut line above the OCR zone
        cv2.line(canvas, mm(x, height - 12.5), mm(x + 1.0, height - 12.5), 120, line)


def render_coupon(ticket: CouponTicket, *, dpi: float = 300.0) -> npt.NDArray[np.uint8]:
    """The ticket as a BGR image at ``dpi`` (true size: 90 x 50 mm)."""
    if not 50 <= dpi <= _MAX_DPI:
        raise CouponError(f"dpi must be between 50 and {_MAX_DPI}")
    k = dpi / 25.4  # px per mm
    layout = coupon_layout(ticket)
    width, height = layout.size_mm
    canvas = np.full((round(height * k), round(width * k)), 255, np.uint8)
    _draw_clutter(canvas, ticket, k)
    render_text(
        canvas,
        ticket.line,
        origin_px=(layout.line_origin_mm[0] * k, layout.line_origin_mm[1] * k),
        px_per_mm=k,
        size_pt=LINE_SIZE_PT,
    )
    if layout.qr_box_mm is not None:
        modules = qr_modules(ticket.line)
        x, y, size, _ = layout.qr_box_mm
        n = modules.shape[0]
        symbol = np.where(modules, 0, 255).astype(np.uint8)
        # Area-average the module grid onto the pixel grid so module edges are honest at any dpi.
        big = cv2.resize(symbol, (n * 16, n * 16), interpolation=cv2.INTER_NEAREST)
        side = round(size * k)
        patch = cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)
        top, left = round(y * k), round(x * k)
        canvas[top : top + side, left : left + side] = patch
    bgr = np.asarray(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR), np.uint8)
    header = bgr[round(1.5 * k) : round(8.5 * k), round(1.5 * k) : round((width - 1.5) * k)]
    tint = header == 215
    header[tint[:, :, 0]] = (235, 215, 190)  # a light blue band, printed in colour
    return bgr


def coupon_png(ticket: CouponTicket, *, dpi: float = 300.0) -> bytes:
    """The ticket as PNG bytes."""
    ok, encoded = cv2.imencode(".png", render_coupon(ticket, dpi=dpi))
    if not ok:  # pragma: no cover - OpenCV's PNG encoder does not fail on a valid image
        raise CouponError("PNG encoding failed")
    return bytes(encoded)
