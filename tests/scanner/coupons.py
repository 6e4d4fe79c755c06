"""Test coupons: valid lines rendered by ``certs.coupon``, photographed by ``scanner.synth``.

Shared by the scanner tests and ``benchmarks/scanner_accuracy.py``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from certs.coupon import CouponTicket, coupon_layout, render_coupon
from scanner.checkdigits import damm_check_digit, is_valid_damm, municipality_check_digit
from scanner.synth import photograph

SOURCE_DPI = 500.0
SOURCE_PX_PER_MM = SOURCE_DPI / 25.4
NAMES = ["YAMADA TARO", "SATO HANAKO", "SUZUKI ICHIRO", "TAKAHASHI YUKI", "ITO KEN"]
PLACES = ["CHIYODA CITY", "SHINJUKU CITY", "OSAKA CITY", "SAPPORO CITY", "NAHA CITY"]


def municipality_code(rng: random.Random) -> str:
    body = f"{rng.randint(1, 47):02d}{rng.randint(0, 999):03d}"
    return body + str(municipality_check_digit(body))


def damm_number(rng: random.Random) -> str:
    body = f"{rng.randint(0, 999_999_999):09d}"
    return body + str(damm_check_digit(body))


def legacy_number(rng: random.Random) -> str:
    """Ten digits whose last digit is NOT a Damm digit (a legacy number reads as legacy)."""
    while True:
        number = f"{rng.randint(0, 9_999_999_999):010d}"
        if not is_valid_damm(number):
            return number


def coupon_line(rng: random.Random, *, legacy: bool) -> str:
    ticket = "1" if rng.random() < 0.9 else "2"
    dose = str(rng.randint(1, 7))
    number = legacy_number(rng) if legacy else damm_number(rng)
    return ticket + dose + municipality_code(rng) + number


@dataclass(frozen=True)
class PrintedCoupon:
    line: str
    legacy: bool
    image: npt.NDArray[np.uint8]
    qr_box_px: tuple[int, int, int, int] | None

    def frame(self, level: str, seed: int, frame: int = 0) -> npt.NDArray[np.uint8]:
        return photograph(
            self.image,
            source_px_per_mm=SOURCE_PX_PER_MM,
            level=level,
            seed=seed,
            frame=frame,
            qr_box_px=self.qr_box_px,
        )


def print_coupon(rng: random.Random, *, legacy: bool, with_qr: bool | None = None) -> PrintedCoupon:
    """A legacy coupon has no QR code; a new one has one unless ``with_qr=False``."""
    line = coupon_line(rng, legacy=legacy)
    qr = (not legacy) if with_qr is None else with_qr
    ticket = CouponTicket(
        line,
        holder_name=rng.choice(NAMES),
        municipality_name=rng.choice(PLACES),
        issued_on=f"202{rng.randint(1, 3)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        with_qr=qr,
    )
    layout = coupon_layout(ticket)
    box = None
    if layout.qr_box_mm is not None:
        box = tuple(round(v * SOURCE_PX_PER_MM) for v in layout.qr_box_mm)
    return PrintedCoupon(
        line,
        legacy,
        render_coupon(ticket, dpi=SOURCE_DPI),
        box,  # type: ignore[arg-type]
    )
