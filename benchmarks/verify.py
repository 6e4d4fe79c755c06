"""Offline verifier timings: full verify(), camera frame to verdict, the conformance run.

    .venv/bin/python benchmarks/verify.py [--iterations 5000] [--frames 200] [--no-conformance]

Pins itself to one core (the issue's targets are "on one core"), builds a test signer, a signed
trust bundle with the sample venue and border rules, and a certificate, then prints medians and
p95 of:

- ``verify(hc1)`` of an ``HC1:`` string with every check including the rules (target ≤ 200 µs);
- its parts: decode only (prefix, base45, zlib, COSE), one ECDSA P-256 verify, the rules;
- a 1280×720 camera frame holding the QR code: ``decode(frame)`` + ``verify`` (target ≤ 15 ms);
- the wall time of ``pytest tests/verifier/test_conformance.py`` (every dgc-testdata stage), if
  ../shared is there.

The machine's load average is printed beside the figures: other work on it inflates them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from certs import wire
from verifier import Status, decode, load_trust_bundle, verify
from verifier.checks import check_rules
from verifier.decode import decode_text
from verifier.testing import (
    make_signer,
    make_trust_bundle,
    public_pem,
    sample_vaccination,
    sign_hc1,
)

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2021, 9, 1, 12, tzinfo=UTC)


def measure(label: str, func: Callable[[], object], iterations: int) -> float:
    for _ in range(min(200, iterations)):
        func()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        func()
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    median = statistics.median(samples) / 1000
    p95 = samples[int(len(samples) * 0.95)] / 1000
    unit, scale = ("ms", 1000) if median > 2000 else ("µs", 1)
    print(f"{label:<48} median {median / scale:9.1f} {unit}   p95 {p95 / scale:9.1f} {unit}")
    return median


def camera_frame(hc1: str) -> np.ndarray:
    """A 1280×720 grey frame, a QR code of about 400 px in it, camera-like noise and blur."""
    qr = cv2.QRCodeEncoder.create().encode(hc1)
    scale = max(1, 400 // qr.shape[0])
    qr = cv2.resize(qr, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    qr = cv2.copyMakeBorder(qr, 16, 16, 16, 16, cv2.BORDER_CONSTANT, value=255)
    frame = np.full((720, 1280), 170, dtype=np.uint8)
    y, x = (720 - qr.shape[0]) // 2, (1280 - qr.shape[1]) // 2
    frame[y : y + qr.shape[0], x : x + qr.shape[1]] = qr
    rng = np.random.default_rng(7)
    noisy = frame.astype(np.int16) + rng.normal(0, 6, frame.shape).astype(np.int16)
    return cv2.GaussianBlur(np.clip(noisy, 0, 255).astype(np.uint8), (3, 3), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--no-conformance", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    print(f"python {sys.version.split()[0]}, one core; load average {os.getloadavg()}")

    signer = make_signer()
    bundle_key = ec.generate_private_key(ec.SECP256R1())
    bundle = make_trust_bundle(bundle_key, [signer.certificate_der], now=NOW - timedelta(days=1))
    trust = load_trust_bundle(bundle, public_pem(bundle_key))
    hc1 = sign_hc1(
        signer,
        sample_vaccination(),
        issued_at=NOW - timedelta(days=30),
        expires=NOW + timedelta(days=365),
    )
    result = verify(hc1, trust=trust, now=NOW, mode="border:DE")
    assert result.status is Status.VALID, result.failed
    print(f"HC1 of {len(hc1)} characters; border:DE has {len(trust.rules['border:DE'])} rules")

    n = args.iterations
    measure("verify(hc1), every check, venue", lambda: verify(hc1, trust=trust, now=NOW), n)
    measure(
        "verify(hc1), every check, border:DE",
        lambda: verify(hc1, trust=trust, now=NOW, mode="border:DE"),
        n,
    )
    measure("  decode only (prefix, base45, zlib, COSE)", lambda: decode_text(hc1), n)
    sign1 = decode_text(hc1).sign1
    assert sign1 is not None
    key = signer.key.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    to_verify = wire.sig_structure(sign1.protected, sign1.payload)
    der = wire.es256_raw_to_der(sign1.signature)
    measure(
        "  one ECDSA P-256 verify (cryptography)",
        lambda: key.verify(der, to_verify, ec.ECDSA(hashes.SHA256())),
        n,
    )
    from verifier.checks import Context

    def rules_only() -> object:
        ctx = Context(sign1, trust, NOW, "border:DE", timedelta(minutes=5))
        return check_rules(ctx)

    measure("  CWT read + border:DE rules (CertLogic)", rules_only, n)

    frame = camera_frame(hc1)
    assert verify(decode(frame), trust=trust, now=NOW).status is Status.VALID
    measure(
        "camera frame 1280x720 -> verdict",
        lambda: verify(decode(frame), trust=trust, now=NOW),
        args.frames,
    )
    blank = np.full((720, 1280), 170, dtype=np.uint8)
    measure("camera frame 1280x720 without a code", lambda: decode(blank), args.frames)

    if not args.no_conformance and (ROOT.parent / "shared" / "conformance").is_dir():
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
             "tests/verifier/test_conformance.py"],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
        print(f"conformance run (pytest, every file and stage, twice)  {wall:.1f} s   {last}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
