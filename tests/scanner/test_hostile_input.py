"""Hostile input to the readers: only our own typed errors, never a crash or a read."""

from __future__ import annotations

import contextlib
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner import ImageError, ScanError, read_coupon, read_lot


def _png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb's first bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


@pytest.mark.parametrize("reader", [read_coupon, read_lot])
@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"", "EMPTY_IMAGE"),
        (b"not an image at all", "UNDECODABLE_IMAGE"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "EMPTY_IMAGE"),  # header says 0x0
        (_png_header_claiming(640, 480), "UNDECODABLE_IMAGE"),  # no pixel data
        (_png_header_claiming(100_000, 100_000), "IMAGE_TOO_LARGE"),
        (np.zeros((4, 4), np.uint8), "EMPTY_IMAGE"),
        (np.zeros((0, 0, 3), np.uint8), "EMPTY_IMAGE"),
        (np.zeros((100, 100), np.float32), "BAD_IMAGE_TYPE"),
        (np.zeros((100, 100, 5), np.uint8), "BAD_IMAGE_SHAPE"),
        (np.zeros((2, 100, 100, 3), np.uint8), "BAD_IMAGE_SHAPE"),
        (12345, "BAD_IMAGE_TYPE"),
        (None, "BAD_IMAGE_TYPE"),
        ({"image": 1}, "BAD_IMAGE_TYPE"),
        ("/nonexistent/coupon.png", "UNDECODABLE_IMAGE"),
    ],
)
def test_bad_images_raise_typed_errors(reader: object, value: object, code: str) -> None:
    with pytest.raises(ImageError) as caught:
        reader(value)  # type: ignore[operator]
    assert caught.value.code == code
    assert isinstance(caught.value, ScanError)


def test_a_huge_array_is_refused_before_any_work() -> None:
    huge = np.broadcast_to(np.uint8(255), (9000, 9000))  # 81 Mpx, no memory behind it
    with pytest.raises(ImageError) as caught:
        read_coupon(huge)
    assert caught.value.code == "IMAGE_TOO_LARGE"


def test_a_directory_path_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError):
        read_coupon(tmp_path)


def test_bgra_and_single_channel_arrays_are_read() -> None:
    blank = np.full((120, 160, 4), 255, np.uint8)
    assert read_coupon(blank) is None
    assert read_coupon(blank[:, :, :1]) is None


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_give_none_or_an_image_error(data: bytes) -> None:
    with contextlib.suppress(ImageError):
        assert read_coupon(data) is None


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_noise_frames_never_give_a_read(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (240, 320), dtype=np.uint8)
    frame = cv2.GaussianBlur(frame, (0, 0), float(rng.uniform(0.1, 3)))
    assert read_coupon(frame) is None
