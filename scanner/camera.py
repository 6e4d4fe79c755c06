"""The camera loop: frames in, staff guidance and accepted coupons out.

Frames come from a camera (``cv2.VideoCapture(index)``) or a video file, so the loop runs
headless. Each frame is read with :func:`scanner.read_coupon` and fed to a
:class:`scanner.CouponConsensus`; what the staff member should do next is said in words
(too dark, glare, blurred, hold still while frames agree, screening-only ticket), and only
a change of advice is reported, so a terminal is not flooded at 30 frames a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from scanner.coupon import CouponConsensus, CouponRead, read_coupon
from scanner.errors import ScanError

__all__ = ["CameraError", "CameraEvent", "Guidance", "frames_from", "watch"]

#: Mean grey level below which the frame is too dark to read, and above which glare or
#: over-exposure washes the print out (0-255).
DARK, BRIGHT = 45.0, 225.0
#: Variance of the Laplacian below which the frame is too blurred for the OCR-B line.
SHARP = 25.0


class CameraError(ScanError):
    """The camera or the video file cannot be opened (``CAMERA_UNAVAILABLE``)."""


class Guidance(StrEnum):
    SEARCHING = "no coupon in view: hold the coupon flat, the printed line across the frame"
    TOO_DARK = "too dark: add light or move away from the shadow"
    TOO_BRIGHT = "too bright: tilt the coupon away from the glare"
    BLURRED = "blurred: hold the coupon still, about 15 cm from the camera"
    HOLD_STILL = "reading: hold still while the frames agree"
    SCREENING_ONLY = "screening-only ticket (type 2): not for recording a dose"
    ACCEPTED = "accepted"


@dataclass(frozen=True)
class CameraEvent:
    """One thing to tell staff: new guidance, or an accepted coupon (``read`` set)."""

    frame: int
    guidance: Guidance
    read: CouponRead | None = None


def frames_from(source: str | int) -> Iterator[npt.NDArray[np.uint8]]:
    """Frames of a camera (device index, or a ``/dev/video*`` path) or of a video file."""
    if isinstance(source, str) and not source.isdigit() and not Path(source).exists():
        raise CameraError("CAMERA_UNAVAILABLE", f"no camera or video file {source!r}")
    capture = cv2.VideoCapture(int(source) if str(source).isdigit() else str(source))
    try:
        if not capture.isOpened():
            raise CameraError("CAMERA_UNAVAILABLE", f"cannot open {source!r}")
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                return
            yield np.asarray(frame, np.uint8)
    finally:
        capture.release()


def _exposure(frame: npt.NDArray[np.uint8]) -> Guidance | None:
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (320, 180), interpolation=cv2.INTER_AREA)
    mean = float(small.mean())
    if mean < DARK:
        return Guidance.TOO_DARK
    if mean > BRIGHT:
        return Guidance.TOO_BRIGHT
    if float(cv2.Laplacian(grey, cv2.CV_32F).var()) < SHARP:
        return Guidance.BLURRED
    return None


def watch(
    frames: Iterable[npt.NDArray[np.uint8]],
    consensus: CouponConsensus | None = None,
    *,
    once: bool = False,
) -> Iterator[CameraEvent]:
    """Read each frame; yield guidance when it changes, and every accepted coupon.

    With ``once`` the loop ends after the first accepted vaccination coupon.
    """
    consensus = consensus or CouponConsensus()
    said: Guidance | None = None
    for index, frame in enumerate(frames):
        read = read_coupon(frame, allow_legacy=consensus.allow_legacy)
        accepted = consensus.feed_read(read)
        if accepted is not None:
            said = None
            if accepted.ticket_type != 1:
                yield CameraEvent(index, Guidance.SCREENING_ONLY, accepted)
                continue
            yield CameraEvent(index, Guidance.ACCEPTED, accepted)
            if once:
                return
            continue
        advice = Guidance.HOLD_STILL if read is not None else _exposure(frame)
        advice = advice or Guidance.SEARCHING
        if advice is not said:
            said = advice
            yield CameraEvent(index, advice)
