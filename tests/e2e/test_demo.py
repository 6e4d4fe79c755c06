"""``vrs demo`` end to end: the service, the scanner and the verifier as separate processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_the_demo_runs_the_whole_chain_and_the_revoked_certificate_is_rejected(
    tmp_path: Path,
) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "vrs", "demo", "--keep", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert out.count("sent: stored as") == 6, out  # every photographed coupon delivered once
    assert "certificate-qr.png: VALID  山田 太郎  born 1980-04-15" in out
    assert "1 certificate(s) revoked" in out
    assert "certificate-qr.png: INVALID REVOKED" in out
    kept = tmp_path / "demo"
    assert (kept / "certificate-qr.png").read_bytes().startswith(b"\x89PNG")
    assert len(list((kept / "tablet").glob("*-photo-*.jpg"))) == 12
