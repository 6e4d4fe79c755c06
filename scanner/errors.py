"""The scanner's exceptions. Every one carries a stable ``code``.

    ScanError                      base: ``code`` + message
    ├── ImageError                 the input is not an image we can read
    │     codes: BAD_IMAGE_TYPE, EMPTY_IMAGE, IMAGE_TOO_LARGE, UNDECODABLE_IMAGE, BAD_IMAGE_SHAPE
    ├── GtinTableError             a GTIN table file or entry is malformed (BAD_GTIN_TABLE)
    └── ConsensusError             bad consensus settings (BAD_CONSENSUS_SETTINGS)

Finding no coupon or no lot code in a readable image is not an error: the readers return
``None`` (a camera loop sees many frames without a code).
"""

from __future__ import annotations

__all__ = ["ConsensusError", "GtinTableError", "ImageError", "ScanError"]


class ScanError(Exception):
    """Base of every scanner error; ``code`` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ImageError(ScanError, ValueError):
    """The input is not an image the scanner can read."""


class GtinTableError(ScanError, ValueError):
    """A GTIN table (JSON/CSV or mapping) is malformed."""


class ConsensusError(ScanError, ValueError):
    """Consensus settings out of range."""
