"""QR codes: alphanumeric mode, level Q, read back by zxing-cpp, identical to another encoder."""

from __future__ import annotations

import io
from typing import Any

import pytest
import qrcode
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from qrcode.util import MODE_ALPHA_NUM, QRData

from certs import RenderError
from certs.qr import ALPHANUMERIC, qr_matrix, qr_png, qr_svg
from certs.testing import make_certificate, make_test_signer

SIGNER = make_test_signer()


def _read(png: bytes) -> Any:
    found = zxingcpp.read_barcode(Image.open(io.BytesIO(png)))
    assert found is not None and found.valid, "zxing-cpp found no QR code"
    return found


def test_the_png_decodes_to_the_hc1_text_at_level_q() -> None:
    hc1 = make_certificate(signer=SIGNER).hc1
    found = _read(qr_png(hc1))
    assert found.text == hc1
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    assert found.extra["ECLevel"] == "Q"


def test_the_symbol_is_the_alphanumeric_level_q_symbol_of_another_encoder() -> None:
    """Module for module what ``qrcode`` makes with the text forced into one alphanumeric
    segment, at the same version and mask: so our symbol is alphanumeric mode, level Q."""
    hc1 = make_certificate(signer=SIGNER).hc1
    ours = qr_matrix(hc1)
    extra = _read(qr_png(hc1)).extra
    other = qrcode.QRCode(
        version=int(extra["Version"]),
        error_correction=qrcode.constants.ERROR_CORRECT_Q,
        mask_pattern=int(extra["DataMask"]),
        border=0,
    )
    other.add_data(QRData(hc1, mode=MODE_ALPHA_NUM))
    other.make(fit=False)
    assert list(ours.rows) == [bytes(int(m) for m in row) for row in other.modules]


def test_the_version_is_the_smallest_that_holds_the_text_as_alphanumeric() -> None:
    hc1 = make_certificate(signer=SIGNER).hc1
    fitted = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=0)
    fitted.add_data(QRData(hc1, mode=MODE_ALPHA_NUM))
    fitted.make(fit=True)
    assert qr_matrix(hc1).size == 17 + 4 * fitted.version


def test_png_geometry_follows_scale_and_quiet_zone() -> None:
    hc1 = make_certificate(signer=SIGNER).hc1
    size = qr_matrix(hc1).size
    image = Image.open(io.BytesIO(qr_png(hc1, scale=3, border=4)))
    assert image.size == ((size + 8) * 3, (size + 8) * 3)
    assert image.mode == "1"
    assert image.getpixel((0, 0)) == 255  # quiet zone is light
    assert image.getpixel((4 * 3, 4 * 3)) == 0  # the finder pattern's corner is dark


def test_the_svg_draws_the_same_modules() -> None:
    hc1 = make_certificate(signer=SIGNER).hc1
    matrix = qr_matrix(hc1)
    svg = qr_svg(hc1, border=4)
    assert svg.startswith("<?xml") and "<svg" in svg and svg.rstrip().endswith("</svg>")
    drawn = [bytearray(matrix.size) for _ in range(matrix.size)]
    path = svg.split(' d="')[1].split('"')[0]
    for run in path.split("z")[:-1]:
        start, length = run[1:].split("v")[0].split("h")
        x, y = (int(v) - 4 for v in start.split(" "))
        for dx in range(int(length)):
            drawn[y][x + dx] = 1
    assert [bytes(row) for row in drawn] == list(matrix.rows)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "BAD_QR_TEXT"),
        ("hc1:lower", "BAD_QR_TEXT"),
        ("HC1:ÄÖ", "BAD_QR_TEXT"),
        ("A" * 2421, "QR_TOO_LONG"),
        (None, "BAD_QR_TEXT"),
        (b"HC1:", "BAD_QR_TEXT"),
    ],
)
def test_bad_texts_are_refused(text: Any, code: str) -> None:
    with pytest.raises(RenderError) as caught:
        qr_png(text)
    assert caught.value.code == code


@pytest.mark.parametrize("layout", [{"scale": 0}, {"scale": 41}, {"border": -1}, {"scale": True}])
def test_bad_layouts_are_refused(layout: dict[str, Any]) -> None:
    with pytest.raises(RenderError) as caught:
        qr_svg("HC1:ABC", **layout)
    assert caught.value.code == "BAD_SCALE"


def test_the_largest_text_that_fits_still_reads() -> None:
    text = "HC1:" + "9" * 2416
    assert _read(qr_png(text, scale=2)).text == text


@settings(max_examples=25, deadline=None)
@given(st.text(st.sampled_from(sorted(ALPHANUMERIC)), min_size=1, max_size=300))
def test_any_alphanumeric_text_round_trips(text: str) -> None:
    assert _read(qr_png(text)).text == text
