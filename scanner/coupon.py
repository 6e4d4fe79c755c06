"""Reading vaccination coupons: the QR code when there is one, else the OCR-B line.

A read is returned only when the 18-digit line is well formed (ticket type 1 or 2, dose 1-9),
the municipality code's check digit holds, and every OCR digit was recognised with a clear
margin. A coupon number whose Damm digit holds was issued by this system (``legacy=False``);
one whose Damm digit fails is a legacy number (``legacy=True``) unless the caller says legacy
numbers cannot occur (``allow_legacy=False``), in which case it is refused.

:class:`CouponConsensus` accepts a QR read at once and an OCR read only when consecutive
frames agree (more frames for legacy numbers, which have no check digit of their own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from scanner import _ocr
from scanner._barcodes import coupon_symbols
from scanner._images import load_image, to_grey
from scanner.checkdigits import is_valid_damm, is_valid_municipality_code
from scanner.errors import ConsensusError

__all__ = ["CouponConsensus", "CouponRead", "parse_coupon_line", "read_coupon"]

TICKET_TYPES = {1: "vaccination", 2: "screening only"}
OCR_MAX_SIDE = 1600  # larger images are shrunk to this long side for the OCR-B line


@dataclass(frozen=True)
class CouponRead:
    """One coupon read from one image."""

    line: str
    ticket_type: int
    dose_number: int
    municipality_code: str
    coupon_number: str
    method: Literal["qr", "ocr"]
    confidence: float
    legacy: bool


def parse_coupon_line(
    line: str,
    *,
    method: Literal["qr", "ocr"] = "qr",
    confidence: float = 1.0,
    allow_legacy: bool = True,
) -> CouponRead | None:
    """The parsed coupon, or None when the 18 digits fail any check."""
    if not (len(line) == 18 and line.isascii() and line.isdigit()):
        return None
    ticket_type, dose_number = int(line[0]), int(line[1])
    municipality, number = line[2:8], line[8:]
    if ticket_type not in TICKET_TYPES or dose_number == 0:
        return None
    if not is_valid_municipality_code(municipality):
        return None
    legacy = not is_valid_damm(number)
    if legacy and not allow_legacy:
        return None
    return CouponRead(
        line=line,
        ticket_type=ticket_type,
        dose_number=dose_number,
        municipality_code=municipality,
        coupon_number=number,
        method=method,
        confidence=confidence,
        legacy=legacy,
    )


def _frame_sized(grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A phone photo shrunk to camera-frame size: the recogniser looks for digits of
    frame-sized height (about 10-90 px), and a 12-megapixel photo's are larger."""
    long_side = max(grey.shape)
    if long_side <= OCR_MAX_SIDE:
        return grey
    k = OCR_MAX_SIDE / long_side
    size = (round(grey.shape[1] * k), round(grey.shape[0] * k))
    return np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), np.uint8)


def read_coupon(image: object, *, allow_legacy: bool = True, ocr: bool = True) -> CouponRead | None:
    """Find a coupon in a camera frame or photo and read it (QR first, then the OCR-B line).

    ``image``: a numpy BGR/grey uint8 array, encoded image bytes, or a path. Returns None when
    no coupon could be read with confidence; raises :class:`scanner.ImageError` for input that
    is not an image.
    """
    grey = to_grey(load_image(image))
    for symbol in coupon_symbols(grey):
        read = parse_coupon_line(symbol.text.strip(), method="qr", allow_legacy=allow_legacy)
        if read is not None:
            return read
    if not ocr:
        return None
    for line, confidence in _ocr.read_lines(_frame_sized(grey)):
        read = parse_coupon_line(
            line, method="ocr", confidence=confidence, allow_legacy=allow_legacy
        )
        if read is not None:
            return read
    return None


class CouponConsensus:
    """Accept a coupon over a stream of frames: QR at once, OCR when consecutive frames agree.

    ``frames`` consecutive agreeing OCR reads accept a coupon number with a Damm digit;
    ``legacy_frames`` are needed for a legacy number. Frames with no read do not break a run
    (the camera loses focus for a frame), but a frame that reads a different line restarts it.
    After an acceptance the run restarts, so the same coupon is not accepted twice in a row
    without fresh agreeing frames.
    """

    def __init__(self, frames: int = 2, legacy_frames: int = 3, *, allow_legacy: bool = True):
        if not 1 <= frames <= 50 or not frames <= legacy_frames <= 50:
            raise ConsensusError(
                "BAD_CONSENSUS_SETTINGS", "need 1 <= frames <= legacy_frames <= 50"
            )
        self.frames = frames
        self.legacy_frames = legacy_frames
        self.allow_legacy = allow_legacy
        self._line: str | None = None
        self._count = 0
        self._confidence = 1.0

    def reset(self) -> None:
        self._line, self._count, self._confidence = None, 0, 1.0

    def feed(self, image: object) -> CouponRead | None:
        """Read one frame; return a read only when it is accepted."""
        return self.feed_read(read_coupon(image, allow_legacy=self.allow_legacy))

    def feed_read(self, read: CouponRead | None) -> CouponRead | None:
        """The same, for a read already made (lets a caller time or log the reads)."""
        if read is None:
            return None
        if read.method == "qr":
            self.reset()
            return read
        if read.line != self._line:
            self._line, self._count, self._confidence = read.line, 0, 1.0
        self._count += 1
        self._confidence = min(self._confidence, read.confidence)
        needed = self.legacy_frames if read.legacy else self.frames
        if self._count < needed:
            return None
        accepted = CouponRead(**{**read.__dict__, "confidence": self._confidence})
        self.reset()
        return accepted
