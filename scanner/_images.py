"""Turn what a caller passes (array, encoded bytes, path) into a checked BGR/grey array."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from scanner.errors import ImageError

MAX_ENCODED_BYTES = 40 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 48-megapixel phone photo is refused; resize first
MAX_SIDE = 12_000

ImageInput = npt.NDArray[np.generic] | bytes | bytearray | memoryview | str | Path


def _check_dimensions(width: int, height: int) -> None:
    if width < 8 or height < 8:
        raise ImageError("EMPTY_IMAGE", f"a {width}x{height} image is too small to hold a code")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageError(
            "IMAGE_TOO_LARGE", f"{width}x{height} is over the limit ({MAX_PIXELS} pixels)"
        )


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG or JPEG header, read before decoding (decompression bombs)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
                h = int.from_bytes(data[i + 5 : i + 7], "big")
                w = int.from_bytes(data[i + 7 : i + 9], "big")
                return w, h
            i += 2 + length
    return None


def _decode(data: bytes) -> npt.NDArray[np.uint8]:
    if not data:
        raise ImageError("EMPTY_IMAGE", "no image bytes")
    if len(data) > MAX_ENCODED_BYTES:
        raise ImageError("IMAGE_TOO_LARGE", f"{len(data)} bytes is over {MAX_ENCODED_BYTES}")
    size = _header_size(data)
    if size is not None:
        _check_dimensions(*size)
    buffer = np.frombuffer(data, np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageError("UNDECODABLE_IMAGE", f"not a readable image: {exc}") from None
    if image is None:
        raise ImageError("UNDECODABLE_IMAGE", "not a PNG, JPEG or other image OpenCV reads")
    return np.asarray(image, np.uint8)


def load_image(image: object) -> npt.NDArray[np.uint8]:
    """A C-contiguous uint8 BGR (H, W, 3) or grey (H, W) array, or an :class:`ImageError`."""
    if isinstance(image, np.ndarray):
        array = image
    elif isinstance(image, bytes | bytearray | memoryview):
        array = _decode(bytes(image))
    elif isinstance(image, str | Path):
        path = Path(image)
        try:
            if path.stat().st_size > MAX_ENCODED_BYTES:
                raise ImageError("IMAGE_TOO_LARGE", f"{path} is over {MAX_ENCODED_BYTES} bytes")
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError("UNDECODABLE_IMAGE", f"cannot read {path}: {exc.strerror}") from None
        array = _decode(data)
    else:
        raise ImageError(
            "BAD_IMAGE_TYPE",
            f"expected a numpy array, image bytes or a path, not {type(image).__name__}",
        )
    if array.dtype != np.uint8:
        raise ImageError("BAD_IMAGE_TYPE", f"pixels must be uint8, not {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 4:
        array = np.asarray(cv2.cvtColor(array, cv2.COLOR_BGRA2BGR), np.uint8)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ImageError("BAD_IMAGE_SHAPE", f"expected (H, W) or (H, W, 3), not {array.shape}")
    _check_dimensions(array.shape[1], array.shape[0])
    return np.ascontiguousarray(array)


def to_grey(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if image.ndim == 2:
        return image
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), np.uint8)
