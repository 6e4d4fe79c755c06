"""Coupon tickets: true-size OCR-B line, a QR code real decoders read, one set of glyph data."""

from __future__ import annotations

import numpy as np
import pytest
import zxingcpp

from certs.coupon import (
    CouponError,
    CouponTicket,
    coupon_layout,
    coupon_png,
    qr_modules,
    render_coupon,
)
from certs.ocrb import OcrbError, line_width_mm, load_atlas, render_text, text_outlines

LINE = "121310161234567894"


def test_the_line_is_printed_at_true_9_pt_size() -> None:
    dpi = 600.0
    image = render_coupon(CouponTicket(LINE, with_qr=False), dpi=dpi)
    layout = coupon_layout(CouponTicket(LINE))
    k = dpi / 25.4
    x, y, w, h = layout.line_box_mm
    rows_mm = slice(round((y - 0.5) * k), round((y + h + 0.5) * k))
    band = image[rows_mm, round((x - 1) * k) : round((x + w + 1) * k), 0] < 128
    cols = np.flatnonzero(band.any(axis=0))
    rows = np.flatnonzero(band.any(axis=1))
    ink_width_mm = (cols[-1] - cols[0] + 1) / k
    ink_height_mm = (rows[-1] - rows[0] + 1) / k
    # 18 advances of 0.723 em at 9 pt = 41.3 mm; the ink is that less the side bearings.
    assert 39.0 < ink_width_mm < w
    assert abs(ink_height_mm - h) < 0.15
    assert 2.3 < h < 2.6  # digit height of OCR-B at 9 pt


@pytest.mark.parametrize("dpi", [150, 300, 600])
def test_the_qr_code_holds_the_same_18_digits(dpi: int) -> None:
    image = render_coupon(CouponTicket(LINE), dpi=dpi)
    found = zxingcpp.read_barcodes(image)
    assert [(r.text, r.format.name) for r in found] == [(LINE, "QRCode")]


def test_qr_size_is_about_10_mm_and_legacy_tickets_have_none() -> None:
    layout = coupon_layout(CouponTicket(LINE))
    assert layout.qr_box_mm is not None and layout.qr_box_mm[2] == 10.0
    assert coupon_layout(CouponTicket(LINE, with_qr=False)).qr_box_mm is None
    assert zxingcpp.read_barcodes(render_coupon(CouponTicket(LINE, with_qr=False))) == []
    assert qr_modules(LINE).shape == (21, 21)  # version 1 holds 18 digits at level M


def test_png_is_a_png_and_rendering_is_deterministic() -> None:
    ticket = CouponTicket(LINE)
    assert coupon_png(ticket).startswith(b"\x89PNG\r\n\x1a\n")
    assert coupon_png(ticket) == coupon_png(ticket)


def test_outlines_and_raster_come_from_the_same_atlas() -> None:
    atlas = load_atlas()
    polygons = text_outlines("0", size_pt=9.0)
    assert polygons  # the zero's outer and inner contours
    assert len(polygons) == len(atlas.glyphs["0"].contours)
    top = max(y for p in polygons for _, y in p)
    assert top == pytest.approx(atlas.ink_top / atlas.units_per_em * 9.0)
    assert line_width_mm("00") == pytest.approx(2 * line_width_mm("0"))
    canvas = np.full((40, 40), 255, np.uint8)
    render_text(canvas, "8", origin_px=(5, 30), px_per_mm=10)
    assert canvas.min() == 0 and canvas.max() == 255


@pytest.mark.parametrize(
    "line", ["", "12131016123456789", "1213101612345678945", "12131016123456789X", "１" * 18]
)
def test_bad_lines_are_refused(line: str) -> None:
    with pytest.raises(CouponError):
        CouponTicket(line)


def test_bad_texts_sizes_and_canvases_are_refused() -> None:
    with pytest.raises(CouponError):
        CouponTicket(LINE, holder_name="山田太郎")
    with pytest.raises(CouponError):
        render_coupon(CouponTicket(LINE), dpi=10_000)
    with pytest.raises(OcrbError):
        text_outlines("ä")
    with pytest.raises(OcrbError):
        render_text(np.zeros((10, 10, 3), np.uint8), "1", origin_px=(0, 5), px_per_mm=5)
