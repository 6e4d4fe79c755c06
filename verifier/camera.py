"""The camera loop: read frames, find a certificate, show the verdict with name and birth date.

Nothing is stored: frames and decoded data live only in memory for the current frame. The same
code reads a camera device (``0``, ``/dev/video0``) or a video file, so it runs headless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cv2
import numpy as np

from verifier.decode import decode
from verifier.result import Status, VerificationResult
from verifier.trust import TrustStore
from verifier.verify import verify

__all__ = ["Verdict", "frames", "run", "verdict_line"]


@dataclass(frozen=True, slots=True)
class Verdict:
    frame: int
    result: VerificationResult


def frames(source: str, *, max_frames: int | None = None) -> Iterator[np.ndarray[Any, Any]]:
    """Greyscale frames from a device number, a device path or a video file."""
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise OSError(f"cannot open camera or video {source!r}")
    try:
        count = 0
        while max_frames is None or count < max_frames:
            ok, frame = capture.read()
            if not ok:
                return
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    finally:
        capture.release()


def verdict_line(result: VerificationResult) -> str:
    """What staff see: the verdict, and for a signed certificate the name and birth date only."""
    if result.status is Status.VALID:
        head = "VALID"
    else:
        failed = result.failed
        head = f"{result.status.value} {result.code.value if result.code else ''}".strip()
        if failed is not None and failed.detail:
            head += f" ({failed.detail})"
    if result.holder is not None:
        return f"{head}  {result.holder.display_name()}  born {result.holder.date_of_birth}"
    return head


def run(
    source: str,
    *,
    trust: TrustStore,
    mode: str,
    clock: Callable[[], datetime],
    show: Callable[[str], None],
    max_frames: int | None = None,
) -> list[Verdict]:
    """Verify each new certificate seen; a code held in view is shown once, not every frame."""
    shown: list[Verdict] = []
    last_text: str | None = None
    for number, frame in enumerate(frames(source, max_frames=max_frames)):
        decoded = decode(frame)
        if decoded.text is None or decoded.text == last_text:
            continue
        last_text = decoded.text
        result = verify(decoded, trust=trust, now=clock(), mode=mode)
        show(verdict_line(result))
        shown.append(Verdict(number, result))
    return shown
