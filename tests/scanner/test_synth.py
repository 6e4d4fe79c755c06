"""The camera-effect generator is deterministic and covers the issue's hard set."""

from __future__ import annotations

import random

import numpy as np

from scanner.synth import FRAME_SIZE, LEVELS
from tests.scanner.coupons import print_coupon


def test_frames_are_1280x720_and_deterministic() -> None:
    coupon = print_coupon(random.Random(5), legacy=False)
    a = coupon.frame("hard", seed=3, frame=1)
    b = coupon.frame("hard", seed=3, frame=1)
    assert a.shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, coupon.frame("hard", seed=3, frame=2))
    assert not np.array_equal(a, coupon.frame("hard", seed=4, frame=1))


def test_consecutive_frames_keep_the_pose() -> None:
    coupon = print_coupon(random.Random(6), legacy=True)
    f0 = coupon.frame("clean", seed=8, frame=0).astype(np.float32)
    f1 = coupon.frame("clean", seed=8, frame=1).astype(np.float32)
    other = coupon.frame("clean", seed=9, frame=0).astype(np.float32)
    # Same hand-held pose (small shake) vs a different pose: the frames differ far less.
    assert np.abs(f0 - f1).mean() < 0.5 * np.abs(f0 - other).mean()


def test_the_hard_level_is_the_issues_hard_set() -> None:
    hard = LEVELS["hard"]
    assert hard.perspective == 0.06
    assert hard.blur_sigma == (1.4, 2.0)
    assert hard.noise_sigma == 12.0
    assert hard.jpeg_quality == (70, 70)
    assert hard.shading > 0 and hard.shadow
    assert set(LEVELS) == {"clean", "mild", "low_res", "occluded", "hard"}
