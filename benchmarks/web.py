"""Web pages and the demo: page rendering, the checker page's verify step, `vrs demo` wall time.

    .venv/bin/python benchmarks/web.py [--renders 2000] [--checks 200] [--no-demo]

No database is needed except the demo's own temporary SQLite. Prints the load average beside
every figure: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric import ec

import verifier
from certs import qr_png
from certs.testing import make_certificate, make_test_signer
from verifier.testing import make_trust_bundle, public_pem
from verifier.web import CheckerServer
from vrs.web import render_page

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(function: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def report(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(f"{name}: median {statistics.median(ms):.3f} ms, p95 {p95:.3f} ms, n={len(ms)}; {load()}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=2000)
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--no-demo", action="store_true")
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}"
    )

    for page in ("resident.html", "municipality.html"):
        render_page(page, "en", None)  # warm the template cache
        report(f"render {page}", timed(lambda p=page: render_page(p, "ja", None), args.renders))

    signer = make_test_signer(now=T0 - timedelta(days=30))
    issued = make_certificate(signer=signer, now=T0 - timedelta(days=1))
    key = ec.generate_private_key(ec.SECP256R1())
    trust = verifier.load_trust_bundle(
        make_trust_bundle(key, [signer.certificate_der], now=T0), public_pem(key)
    )
    checker = CheckerServer(trust, mode="venue", clock=lambda: T0, port=0)
    png = qr_png(issued.hc1)
    qr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    frame = np.full((720, 1280), 180, np.uint8)
    frame[100:620, 380:900] = cv2.resize(qr, (520, 520), interpolation=cv2.INTER_NEAREST)
    jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    assert checker.check(jpeg)["status"] == "VALID"
    report(
        "checker: 1280x720 JPEG frame to verdict", timed(lambda: checker.check(jpeg), args.checks)
    )
    report(
        "checker: HC1 text to verdict",
        timed(lambda: checker.check(issued.hc1.encode()), args.checks),
    )

    if not args.no_demo:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "vrs", "demo"], capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
        steps = [line for line in done.stdout.splitlines() if line.startswith("[")]
        for line in steps:
            print("  " + line)
        print(f"vrs demo: exit {done.returncode}, wall {wall:.1f} s; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
