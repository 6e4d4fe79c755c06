"""The pyzbar fallback (the ``zbar`` extra), run where the package and libzbar0 are installed.

CI installs both (``.ci/run``: Debian's ``libzbar0``; the ``dev`` extra pulls in ``pyzbar``).
"""

from __future__ import annotations

import random

import cv2
import pytest

from scanner import _barcodes
from tests.scanner.coupons import print_coupon

pytestmark = pytest.mark.skipif(
    not _barcodes.zbar_available(), reason="pyzbar or the libzbar0 system library is not installed"
)


def test_pyzbar_reads_the_coupon_qr_code_of_a_camera_frame() -> None:
    coupon = print_coupon(random.Random(77), legacy=False)
    grey = cv2.cvtColor(coupon.frame("clean", seed=3), cv2.COLOR_BGR2GRAY)
    symbols = _barcodes._zbar(grey, frozenset({"QRCode"}))
    assert [(s.text, s.format) for s in symbols] == [(coupon.line, "QRCode")]


def test_pyzbar_agrees_with_zxing_cpp_on_the_same_frames() -> None:
    rng = random.Random(78)
    for seed in range(5):
        coupon = print_coupon(rng, legacy=False)
        grey = cv2.cvtColor(coupon.frame("mild", seed=seed), cv2.COLOR_BGR2GRAY)
        zbar = {s.text for s in _barcodes._zbar(grey, frozenset({"QRCode"}))}
        zxing = {s.text for s in _barcodes._zxing(grey, _barcodes._COUPON_FORMATS)}
        assert zbar <= {coupon.line}
        assert zxing <= {coupon.line}
