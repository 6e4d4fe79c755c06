"""Seeded camera effects for test coupons: put a printed image into a 1280x720 camera frame.

Pure image operations (numpy + OpenCV) so tests and benchmarks can photograph coupons that
``certs.coupon`` rendered without this package importing ``certs``. Everything is
deterministic in ``(seed, frame)``: the pose of the coupon, the desk and the light are drawn
from ``seed`` alone (a hand holding a ticket under a tablet), and each frame adds its own hand
shake, blur, noise and JPEG loss (and moves the finger), as consecutive camera frames do.

Levels (:data:`LEVELS`): ``clean``, ``mild``, ``low_res`` (the ticket small in the frame),
``occluded`` (a finger over part of the QR code) and ``hard`` (the issue's hard set:
perspective up to 6%, blur sigma 1.4-2.0, noise sigma 12, uneven light and a shadow, JPEG q70).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["LEVELS", "Distortion", "photograph"]

FRAME_SIZE = (1280, 720)


@dataclass(frozen=True)
class Distortion:
    """Ranges the camera effects are drawn from (uniformly, per coupon or per frame)."""

    name: str
    px_per_mm: tuple[float, float]  # the ticket's scale in the frame
    rotation_deg: float  # |in-plane rotation| at most this
    perspective: float  # each corner moves up to this fraction of the ticket's size
    blur_sigma: tuple[float, float]  # Gaussian blur (defocus), in frame pixels
    noise_sigma: float  # sensor noise, grey levels
    shading: float  # 0 = even light; 0.4 = 40% darker on the dim side
    shadow: bool  # a soft shadow across part of the ticket
    jpeg_quality: tuple[int, int]
    occlude_qr: float  # share of the QR symbol's area covered, 0 = never


LEVELS: dict[str, Distortion] = {
    d.name: d
    for d in (
        Distortion("clean", (10.0, 12.0), 3.0, 0.0, (0.3, 0.6), 2.0, 0.0, False, (92, 95), 0.0),
        Distortion("mild", (8.5, 11.0), 8.0, 0.02, (0.6, 1.0), 5.0, 0.15, False, (85, 92), 0.0),
        Distortion("low_res", (5.5, 7.0), 5.0, 0.02, (0.7, 1.0), 6.0, 0.15, False, (80, 90), 0.0),
        Distortion(
            "occluded", (8.5, 11.0), 6.0, 0.02, (0.6, 1.0), 5.0, 0.15, False, (85, 92), 0.35
        ),
        Distortion("hard", (8.5, 11.0), 8.0, 0.06, (1.4, 2.0), 12.0, 0.4, True, (70, 70), 0.25),
    )
}


def _background(rng: np.random.Generator, size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """A desk: smooth blotches of a dull colour, a second sheet of paper, a few printed marks."""
    w, h = size
    base = rng.uniform(60, 150, 3).astype(np.float32)
    blotches = cv2.resize(rng.normal(0, 18, (9, 16, 3)).astype(np.float32), (w, h))
    scene = np.clip(base + blotches, 0, 255).astype(np.uint8)
    x, y = int(rng.integers(-200, w - 200)), int(rng.integers(-200, h - 200))
    paper = float(rng.uniform(170, 230))
    cv2.rectangle(scene, (x, y), (x + 420, y + 300), (paper, paper, paper), -1)
    for _ in range(int(rng.integers(2, 6))):
        px, py = int(rng.integers(0, w)), int(rng.integers(0, h))
        text = "".join(rng.choice(list("0123456789ABCDEFGH "), int(rng.integers(4, 14))))
        cv2.putText(
            scene,
            text,
            (px, py),
            cv2.FONT_HERSHEY_SIMPLEX,
            float(rng.uniform(0.4, 1.0)),
            (40, 40, 40),
            int(rng.integers(1, 3)),
            cv2.LINE_AA,
        )
    return np.asarray(scene, np.float32)


def _pose(
    rng: np.random.Generator, level: Distortion, size_px: tuple[int, int], scale: float
) -> npt.NDArray[np.float32]:
    """The ticket's four corners in the frame (top-left, top-right, bottom-right, bottom-left)."""
    w, h = size_px[0] * scale, size_px[1] * scale
    fw, fh = FRAME_SIZE
    angle = np.deg2rad(rng.uniform(-level.rotation_deg, level.rotation_deg))
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = corners @ rot.T
    corners += rng.uniform(-level.perspective, level.perspective, (4, 2)) * [w, h]
    span = corners.max(axis=0) - corners.min(axis=0)
    room = np.maximum([fw, fh] - span, 0) / 2 - 8
    centre = np.array([fw / 2, fh / 2]) + rng.uniform(-1, 1, 2) * room
    return np.asarray(corners + centre, np.float32)


def _lighting(
    rng: np.random.Generator, level: Distortion, size: tuple[int, int]
) -> npt.NDArray[np.float32]:
    """A multiplicative light field: a gradient, a vignette and, optionally, a soft shadow."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(direction) * (xx / w - 0.5) + np.sin(direction) * (yy / h - 0.5)) + 0.5
    field = 1.0 - level.shading * np.clip(ramp, 0, 1)
    vignette = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * level.shading * 0.5
    field -= vignette
    if level.shadow:
        mask = np.zeros((h, w), np.float32)
        edge = rng.uniform([0, 0], [w, h], (2, 2)).astype(np.int32)
        far = (
            np.array([[w, h], [0, h]], np.int32)
            if rng.random() < 0.5
            else np.array([[w, 0], [w, h]], np.int32)
        )
        cv2.fillPoly(mask, [np.vstack([edge, far])], 1.0)
        mask = np.asarray(cv2.GaussianBlur(mask, (0, 0), 25), np.float32)
        field *= 1.0 - float(rng.uniform(0.25, 0.45)) * mask
    return np.asarray(field, np.float32)


def photograph(
    printed: npt.NDArray[np.uint8],
    *,
    source_px_per_mm: float,
    level: str | Distortion,
    seed: int,
    frame: int = 0,
    qr_box_px: tuple[int, int, int, int] | None = None,
) -> npt.NDArray[np.uint8]:
    """A 1280x720 BGR camera frame of ``printed`` (a BGR ticket rendered at ``source_px_per_mm``).

    ``qr_box_px`` (x, y, width, height in ``printed``'s pixels) is where the QR code is, for
    levels that occlude part of it.
    """
    spec = LEVELS[level] if isinstance(level, str) else level
    pose_rng = np.random.default_rng([seed, 0])  # the coupon's pose, the desk and the light
    scene_rng = np.random.default_rng([seed, 1])
    rng = np.random.default_rng([seed, frame + 2])  # what changes from frame to frame
    scale = float(pose_rng.uniform(*spec.px_per_mm)) / source_px_per_mm
    h, w = printed.shape[:2]
    ticket = printed.astype(np.float32)
    if qr_box_px is not None and spec.occlude_qr > 0:
        x, y, bw, bh = qr_box_px
        finger_w = bw * float(rng.uniform(0.8, 1.2)) * spec.occlude_qr * 2
        cx = x + bw * float(rng.uniform(0.0, 1.0))
        cy = y + bh + finger_w * 0.1 - bh * spec.occlude_qr * float(rng.uniform(0.8, 1.2))
        skin = (float(rng.uniform(120, 160)), float(rng.uniform(150, 180)), 215.0)
        cv2.ellipse(
            ticket,
            (round(cx), round(cy + finger_w)),
            (round(finger_w / 2), round(finger_w * 1.3)),
            0,
            0,
            360,
            skin,
            -1,
            cv2.LINE_AA,
        )
    # Shrink with area averaging first (as a lens integrates), then warp at the final size.
    small_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(cv2.resize(ticket, small_size, interpolation=cv2.INTER_AREA), np.float32)
    corners = _pose(pose_rng, spec, (w, h), scale)
    corners += rng.normal(0, 1.5, corners.shape).astype(np.float32)  # hand shake
    sw, sh = small_size
    src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, corners)
    scene = _background(scene_rng, FRAME_SIZE)
    paper_tone = np.float32(scene_rng.uniform(0.85, 1.0))
    warped = cv2.warpPerspective(small * paper_tone, matrix, FRAME_SIZE, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((sh, sw), np.float32), matrix, FRAME_SIZE)[..., None]
    scene = scene * (1 - mask) + warped * mask
    scene *= _lighting(scene_rng, spec, FRAME_SIZE)[..., None]
    sigma = float(rng.uniform(*spec.blur_sigma))
    scene = np.asarray(cv2.GaussianBlur(scene, (0, 0), sigma), np.float32)
    scene += rng.normal(0, spec.noise_sigma, scene.shape).astype(np.float32)
    image = np.clip(scene, 0, 255).astype(np.uint8)
    quality = int(rng.integers(spec.jpeg_quality[0], spec.jpeg_quality[1] + 1))
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV's JPEG encoder does not fail on a valid image
        raise RuntimeError("JPEG encoding failed")
    return np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), np.uint8)
