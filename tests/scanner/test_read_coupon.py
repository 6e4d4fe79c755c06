"""read_coupon on camera frames of rendered coupons: real QR decoding, our OCR-B recogniser."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from certs.coupon import CouponTicket, coupon_png, render_coupon
from scanner import CouponRead, parse_coupon_line, read_coupon
from tests.scanner.coupons import print_coupon

SEED = 4242  # the benchmark uses other seeds


def test_qr_is_read_from_a_full_frame() -> None:
    coupon = print_coupon(random.Random(SEED), legacy=False)
    read = read_coupon(coupon.frame("mild", seed=1))
    assert read is not None
    assert (read.line, read.method, read.legacy, read.confidence) == (coupon.line, "qr", False, 1.0)
    assert read.ticket_type == int(coupon.line[0])
    assert read.dose_number == int(coupon.line[1])
    assert read.municipality_code == coupon.line[2:8]
    assert read.coupon_number == coupon.line[8:]


@pytest.mark.parametrize("level", ["clean", "mild", "low_res"])
def test_ocr_reads_legacy_coupons_without_a_qr_code(level: str) -> None:
    rng = random.Random(f"{SEED}-{level}")
    reads = []
    for i in range(4):
        coupon = print_coupon(rng, legacy=True)
        read = read_coupon(coupon.frame(level, seed=i))
        assert read is None or read.line == coupon.line, "a wrong number was returned"
        reads.append(read)
        if read is not None:
            assert (read.method, read.legacy) == ("ocr", True)
            assert 0 < read.confidence <= 1
    assert sum(r is not None for r in reads) >= 3


def test_ocr_takes_over_when_a_finger_covers_the_qr_code() -> None:
    coupon = print_coupon(random.Random(SEED + 1), legacy=False)
    frame = coupon.frame("occluded", seed=3)
    read = read_coupon(frame)
    assert read is not None and read.line == coupon.line
    assert (read.method, read.legacy) == ("ocr", False)
    assert read_coupon(frame, ocr=False) is None


def test_hard_frames_never_give_a_wrong_number() -> None:
    rng = random.Random(SEED + 2)
    right = 0
    for i in range(6):
        coupon = print_coupon(rng, legacy=i % 2 == 0)
        read = read_coupon(coupon.frame("hard", seed=100 + i))
        assert read is None or read.line == coupon.line
        right += read is not None
    assert right >= 3


def test_an_upside_down_coupon_is_read() -> None:
    coupon = print_coupon(random.Random(SEED + 3), legacy=True)
    frame = cv2.rotate(coupon.frame("clean", seed=5), cv2.ROTATE_180)
    read = read_coupon(frame)
    assert read is not None and read.line == coupon.line


def test_encoded_bytes_paths_and_grey_arrays_are_accepted(tmp_path: object) -> None:
    ticket = CouponTicket("121310161234567894", with_qr=False)
    png = coupon_png(ticket, dpi=300)
    path = tmp_path / "coupon.png"  # type: ignore[operator]
    path.write_bytes(png)
    grey = cv2.cvtColor(render_coupon(ticket, dpi=300), cv2.COLOR_BGR2GRAY)
    reads = [read_coupon(png), read_coupon(path), read_coupon(str(path)), read_coupon(grey)]
    assert {r.line if r else None for r in reads} == {"121310161234567894"}


def test_a_bad_municipality_check_digit_is_never_returned() -> None:
    # 131017 is 131016 with a wrong check digit; both the QR and the OCR line hold it.
    ticket = CouponTicket("111310171234567890", with_qr=True)
    assert read_coupon(coupon_png(ticket, dpi=300)) is None


def test_allow_legacy_false_refuses_numbers_without_a_damm_digit() -> None:
    ticket = CouponTicket("111310161234567890")  # 1234567890 fails Damm
    assert read_coupon(coupon_png(ticket, dpi=300), allow_legacy=False) is None
    read = read_coupon(coupon_png(ticket, dpi=300))
    assert read is not None and read.legacy


def test_a_frame_without_a_coupon_reads_nothing() -> None:
    rng = np.random.default_rng(7)
    desk = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    assert read_coupon(desk) is None
    assert read_coupon(np.full((720, 1280), 255, np.uint8)) is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("111310161234567890", ("131016", True)),
        ("131310161234567894", ("131016", False)),  # 123456789 + Damm digit 4
        ("292710040000000000", ("271004", False)),  # all zeros: Damm digit 0 holds
    ],
)
def test_parse_coupon_line(line: str, expected: tuple[str, bool]) -> None:
    read = parse_coupon_line(line)
    assert isinstance(read, CouponRead)
    assert (read.municipality_code, read.legacy) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "11131016123456789",  # 17 digits
        "1113101612345678901",  # 19 digits
        "311310161234567890",  # ticket type 3
        "101310161234567890",  # dose 0
        "114810161234567890",  # prefecture 48
        "111310151234567890",  # check digit
        "11131016123456789٠",  # an Arabic-Indic zero is a digit to str.isdigit, not to us
        "11131016 234567890",
    ],
)
def test_parse_coupon_line_refuses(line: str) -> None:
    assert parse_coupon_line(line) is None


def test_a_large_phone_photo_is_read_by_ocr() -> None:
    # A 600 dpi scan-like photo (2126 px wide): digits far taller than in a camera frame.
    ticket = CouponTicket("121310161234567894", with_qr=False)
    photo = render_coupon(ticket, dpi=600)
    canvas = np.full((3000, 4000, 3), 90, np.uint8)
    canvas[900 : 900 + photo.shape[0], 800 : 800 + photo.shape[1]] = photo
    read = read_coupon(canvas)
    assert read is not None and read.line == "121310161234567894" and read.method == "ocr"
