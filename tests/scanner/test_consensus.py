"""CouponConsensus: QR at once, OCR only when consecutive frames agree (more for legacy)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from scanner import ConsensusError, CouponConsensus, CouponRead, parse_coupon_line
from tests.scanner.coupons import print_coupon

NEW = "131310161234567894"  # Damm digit 4 holds
LEGACY = "111310161234567890"


def _read(line: str, method: str = "ocr", confidence: float = 0.9) -> CouponRead:
    read = parse_coupon_line(line, method=method, confidence=confidence)  # type: ignore[arg-type]
    assert read is not None
    return read


def test_a_qr_read_is_accepted_at_once() -> None:
    consensus = CouponConsensus()
    accepted = consensus.feed_read(_read(NEW, "qr", 1.0))
    assert accepted is not None and accepted.method == "qr"


def test_ocr_needs_two_agreeing_frames_for_a_damm_number() -> None:
    consensus = CouponConsensus(frames=2, legacy_frames=3)
    assert consensus.feed_read(_read(NEW, confidence=0.9)) is None
    accepted = consensus.feed_read(_read(NEW, confidence=0.7))
    assert accepted is not None and accepted.line == NEW
    assert accepted.confidence == 0.7  # the weakest frame of the run


def test_legacy_numbers_need_three() -> None:
    consensus = CouponConsensus(frames=2, legacy_frames=3)
    assert consensus.feed_read(_read(LEGACY)) is None
    assert consensus.feed_read(_read(LEGACY)) is None
    accepted = consensus.feed_read(_read(LEGACY))
    assert accepted is not None and accepted.legacy


def test_a_different_read_restarts_the_run_and_empty_frames_do_not() -> None:
    consensus = CouponConsensus(frames=2)
    other = "131310161234567901"  # another Damm number
    assert not _read(other).legacy
    assert consensus.feed_read(_read(NEW)) is None
    assert consensus.feed_read(_read(other)) is None
    assert consensus.feed_read(None) is None
    accepted = consensus.feed_read(_read(other))
    assert accepted is not None and accepted.line == other


def test_after_an_acceptance_fresh_frames_are_needed() -> None:
    consensus = CouponConsensus(frames=2)
    consensus.feed_read(_read(NEW))
    assert consensus.feed_read(_read(NEW)) is not None
    assert consensus.feed_read(_read(NEW)) is None
    consensus.feed_read(_read(NEW))
    consensus.reset()
    assert consensus.feed_read(_read(NEW)) is None


def test_feed_reads_real_frames() -> None:
    coupon = print_coupon(random.Random(77), legacy=True)
    consensus = CouponConsensus(frames=2, legacy_frames=2)
    results = [consensus.feed(coupon.frame("clean", seed=9, frame=i)) for i in range(4)]
    accepted = [r for r in results if r is not None]
    assert accepted and accepted[0].line == coupon.line and accepted[0].method == "ocr"


def test_allow_legacy_false_never_accepts_a_legacy_number() -> None:
    coupon = print_coupon(random.Random(78), legacy=True)
    consensus = CouponConsensus(allow_legacy=False)
    assert all(consensus.feed(coupon.frame("clean", seed=2, frame=i)) is None for i in range(3))


@pytest.mark.parametrize(("frames", "legacy_frames"), [(0, 3), (3, 2), (2, 51)])
def test_bad_settings_raise(frames: int, legacy_frames: int) -> None:
    with pytest.raises(ConsensusError) as caught:
        CouponConsensus(frames, legacy_frames)
    assert caught.value.code == "BAD_CONSENSUS_SETTINGS"


def test_reads_are_frozen() -> None:
    read = _read(NEW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.line = LEGACY  # type: ignore[misc]
