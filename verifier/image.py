"""Finding the QR code in an image (path, encoded bytes or ndarray) with zxing-cpp.

Oversized input is refused before any pixel is decoded: an encoded file over
:data:`MAX_IMAGE_BYTES`, or a PNG/JPEG whose header declares more than :data:`MAX_PIXELS`.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import zxingcpp

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_PIXELS",
    "ImageProblem",
    "declared_size",
    "is_image_bytes",
    "read_qr_text",
]

MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; a camera frame is 1 to 8

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_OTHER_MAGIC = (b"BM", b"GIF8", b"II*\x00", b"MM\x00*", b"RIFF")
_QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageProblem(Exception):
    """Why no QR text came out of an image; ``code`` is a result code (see docs/verifier.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_image_bytes(data: bytes) -> bool:
    return data.startswith((_PNG_MAGIC, _JPEG_MAGIC, *_OTHER_MAGIC))


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, without decoding; None if not found."""
    if data.startswith(_PNG_MAGIC) and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(_JPEG_MAGIC):
        pos = 2
        while pos + 9 <= len(data):
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            if marker in _SOF_MARKERS:
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return int(width), int(height)
            pos += 2 + length
    return None


def _decode_bytes(data: bytes) -> np.ndarray[Any, Any]:
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem("IMAGE_TOO_LARGE", f"image file larger than {MAX_IMAGE_BYTES} bytes")
    size = declared_size(data)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise ImageProblem("IMAGE_TOO_LARGE", f"image of {size[0]}x{size[1]} pixels")
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    except cv2.error:
        image = None
    if image is None:
        raise ImageProblem("IMAGE_UNREADABLE", "the image does not decode")
    return image


def load_image(source: str | Path | bytes | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A greyscale or colour pixel array from a path, encoded bytes or an array."""
    if isinstance(source, np.ndarray):
        return source
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            if path.stat().st_size > MAX_IMAGE_BYTES:
                raise ImageProblem("IMAGE_TOO_LARGE", f"{path.name} is larger than allowed")
            data = path.read_bytes()
        except OSError as exc:
            raise ImageProblem("IMAGE_UNREADABLE", f"cannot read {path.name}: {exc}") from None
        return _decode_bytes(data)
    return _decode_bytes(bytes(source))


def read_qr_text(source: str | Path | bytes | np.ndarray[Any, Any]) -> str:
    """The text of the first QR code in the image; :class:`ImageProblem` if there is none."""
    image = load_image(source)
    if image.ndim not in (2, 3) or image.size == 0:
        raise ImageProblem("IMAGE_UNREADABLE", "an image array has 2 or 3 dimensions")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageProblem("IMAGE_TOO_LARGE", f"image of {image.shape[1]}x{image.shape[0]}")
    if image.dtype != np.uint8:
        raise ImageProblem("IMAGE_UNREADABLE", "an image array must be 8-bit")
    try:
        found = zxingcpp.read_barcodes(image, formats=_QR_ONLY)
    except (ValueError, RuntimeError) as exc:
        raise ImageProblem("IMAGE_UNREADABLE", f"the QR reader refused the image ({exc})") from None
    for barcode in found:
        if barcode.valid and barcode.text:
            return str(barcode.text)
    raise ImageProblem("NO_QR_FOUND", "no readable QR code in the image")
