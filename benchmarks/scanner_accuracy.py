#!/usr/bin/env python3
"""Coupon reading accuracy and speed on synthetic camera frames (seeded, deterministic).

    .venv/bin/python benchmarks/scanner_accuracy.py                 # 2,000 coupons, seed 20261123
    .venv/bin/python benchmarks/scanner_accuracy.py --coupons 200 --seed 7 --levels hard

For each coupon: render it with ``certs.coupon`` (legacy coupons: no QR code, no Damm digit),
photograph it up to 3 times with ``scanner.synth`` at its distortion level (one hand-held pose
per coupon, fresh blur, noise, light and JPEG per frame), and feed each 1280x720 frame to
``scanner.read_coupon`` and a ``CouponConsensus(frames=2, legacy_frames=3)``. Reported per
level:

- ``accepted``: share of coupons the consensus accepted with the right number within 3 frames;
- ``wrong accepted``: coupons accepted with a wrong number (the target is 0);
- ``read``: share with at least one right single-frame read within 3 frames (what staff see
  before consensus), and the single-frame rates by method;
- ``wrong frames``: single frames that returned a wrong number (consensus must absorb these);
- milliseconds per frame for ``read_coupon`` (mean, p50, p95, max), wall clock and the
  thread's CPU time, on one core (the process is pinned to one CPU, OpenCV and BLAS held to
  one thread); frame synthesis is not timed. On a shared machine the wall clock includes
  waiting for the CPU; the CPU time does not.

Tests use other seeds; the figures in docs/benchmarks.md come from a seed they never saw.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner import CouponConsensus, read_coupon  # noqa: E402
from tests.scanner.coupons import print_coupon  # noqa: E402

DEFAULT_MIX = {"clean": 250, "mild": 300, "low_res": 300, "occluded": 250, "hard": 900}
FRAMES = 3


def run_level(level: str, coupons: int, seed: int, legacy_share: float) -> dict[str, object]:
    rng = random.Random(f"{seed}-{level}")
    counts: Counter[str] = Counter()
    times: list[float] = []
    cpu_times: list[float] = []
    for _ in range(coupons):
        legacy = rng.random() < legacy_share
        coupon = print_coupon(rng, legacy=legacy)
        consensus = CouponConsensus(frames=2, legacy_frames=3)
        accepted = None
        read_right = False
        for frame in range(FRAMES):
            image = coupon.frame(level, seed=rng.randrange(2**31), frame=frame)
            started, cpu_started = time.perf_counter(), time.thread_time()
            read = read_coupon(image)
            times.append((time.perf_counter() - started) * 1000)
            cpu_times.append((time.thread_time() - cpu_started) * 1000)
            counts["frames"] += 1
            if read is not None:
                counts[f"frames_{read.method}"] += 1
                if read.line == coupon.line:
                    read_right = True
                    counts[f"frames_{read.method}_right"] += 1
                else:
                    counts["frames_wrong"] += 1
            accepted = consensus.feed_read(read)
            if accepted is not None:
                break
        kind = "legacy" if legacy else "new"
        counts[f"coupons_{kind}"] += 1
        counts["coupons"] += 1
        if accepted is not None and accepted.line == coupon.line:
            counts["accepted"] += 1
            counts[f"accepted_{kind}"] += 1
        elif accepted is not None:
            counts["wrong_accepted"] += 1
        counts["read"] += read_right
        counts[f"read_{kind}"] += read_right
    times.sort()
    cpu_times.sort()
    return {
        "cpu_ms_mean": statistics.fmean(cpu_times),
        "cpu_ms_p50": cpu_times[len(cpu_times) // 2],
        "cpu_ms_p95": cpu_times[int(len(cpu_times) * 0.95)],
        "level": level,
        "counts": dict(counts),
        "ms_mean": statistics.fmean(times),
        "ms_p50": times[len(times) // 2],
        "ms_p95": times[int(len(times) * 0.95)],
        "ms_max": times[-1],
    }


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def report(results: list[dict[str, object]]) -> str:
    rows = [
        "| level | coupons (legacy) | accepted ≤3 frames | new | legacy | wrong accepted "
        "| read ≤3 frames | frames: QR / OCR right | wrong frames "
        "| wall ms/frame mean / p50 / p95 / max | CPU ms/frame mean / p50 / p95 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c: dict[str, int] = r["counts"]  # type: ignore[assignment]
        n, frames = c.get("coupons", 0), c.get("frames", 0)
        rows.append(
            f"| {r['level']} | {n} ({c.get('coupons_legacy', 0)}) | "
            f"{_pct(c.get('accepted', 0), n)} | "
            f"{_pct(c.get('accepted_new', 0), c.get('coupons_new', 0))} | "
            f"{_pct(c.get('accepted_legacy', 0), c.get('coupons_legacy', 0))} | "
            f"{c.get('wrong_accepted', 0)} | {_pct(c.get('read', 0), n)} | "
            f"{_pct(c.get('frames_qr_right', 0), frames)} / "
            f"{_pct(c.get('frames_ocr_right', 0), frames)} | {c.get('frames_wrong', 0)} | "
            f"{r['ms_mean']:.1f} / {r['ms_p50']:.1f} / {r['ms_p95']:.1f} / {r['ms_max']:.1f} | "
            f"{r['cpu_ms_mean']:.1f} / {r['cpu_ms_p50']:.1f} / {r['cpu_ms_p95']:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--coupons", type=int, help="coupons per level (default: the mix)")
    parser.add_argument("--levels", nargs="*", default=list(DEFAULT_MIX))
    parser.add_argument("--legacy-share", type=float, default=0.4)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    load_before = os.getloadavg()
    results = []
    for level in args.levels:
        coupons = args.coupons or DEFAULT_MIX.get(level, 200)
        result = run_level(level, coupons, args.seed, args.legacy_share)
        results.append(result)
        print(report([result]).splitlines()[-1], flush=True)
    load_after = os.getloadavg()
    print()
    print(report(results))
    total = sum(r["counts"]["coupons"] for r in results)  # type: ignore[index]
    print(
        f"\n{total} coupons, seed {args.seed}; load average before "
        f"{load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, after "
        f"{load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seed": args.seed,
                    "load_before": load_before,
                    "load_after": load_after,
                    "results": results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
