"""The vrs-verify command: check with exit codes 0/1/2, --json, sync, and the camera loop on a
video file (headless), run as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.verifier.conftest import NOW
from verifier.cli import main
from verifier.sync import BUNDLE_FILE, PIN_FILE
from verifier.testing import TestSigner, make_signer, public_pem, sample_vaccination, sign_hc1

NOW_ISO = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def _script() -> str:
    found = shutil.which("vrs-verify", path=str(Path(sys.executable).parent))
    assert found, "the vrs-verify console script is not installed"
    return found


@pytest.fixture
def trust_dir(tmp_path: Path, bundle: bytes, bundle_key: ec.EllipticCurvePrivateKey) -> Path:
    (tmp_path / BUNDLE_FILE).write_bytes(bundle)
    (tmp_path / PIN_FILE).write_bytes(public_pem(bundle_key))
    return tmp_path


def _hc1(signer: TestSigner, dose: int = 2) -> str:
    return sign_hc1(
        signer,
        sample_vaccination(dose=dose),
        issued_at=NOW - timedelta(days=30),
        expires=NOW + timedelta(days=300),
    )


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [_script(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_check_exit_codes(trust_dir: Path, signer: TestSigner) -> None:
    base = ["--dir", str(trust_dir), "check", "--now", NOW_ISO]
    valid = _run(*base, _hc1(signer))
    assert valid.returncode == 0, valid.stderr
    assert "VALID" in valid.stdout and "山田 花子" in valid.stdout and "1980-04-01" in valid.stdout
    invalid = _run(*base, _hc1(signer, dose=1))
    assert invalid.returncode == 1 and "RULE_FAILED" in invalid.stdout
    stale = _run("--dir", str(trust_dir), "check", "--now", "2030-01-01T00:00:00Z", _hc1(signer))
    assert stale.returncode == 2 and "TRUST_STALE" in stale.stdout
    garbage = _run(*base, "HC1:%%%")
    assert garbage.returncode == 1 and "BASE45_INVALID" in garbage.stdout


def test_check_json_and_files(trust_dir: Path, signer: TestSigner, tmp_path: Path) -> None:
    text_file = tmp_path / "cert.txt"
    text_file.write_text(_hc1(signer) + "\n")
    png = tmp_path / "cert.png"
    qr = cv2.QRCodeEncoder.create().encode(_hc1(signer))
    cv2.imwrite(str(png), cv2.resize(qr, None, fx=6, fy=6, interpolation=cv2.INTER_NEAREST))
    code = main(
        ["--dir", str(trust_dir), "check", "--now", NOW_ISO, "--json", str(text_file), str(png)]
    )
    assert code == 0


def test_check_json_output(trust_dir: Path, signer: TestSigner) -> None:
    done = _run(
        "--dir",
        str(trust_dir),
        "check",
        "--now",
        NOW_ISO,
        "--json",
        "--mode",
        "border:DE",
        _hc1(signer),
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[0])
    assert record["status"] == "VALID" and record["mode"] == "border:DE"
    assert record["holder"]["family_name_standardised"] == "YAMADA"
    assert [c["check"] for c in record["checks"]][-1] == "rules"


def test_without_trust_it_cannot_decide(tmp_path: Path, signer: TestSigner) -> None:
    done = _run("--dir", str(tmp_path), "check", _hc1(signer))
    assert done.returncode == 2 and "NO_PIN" in done.stderr


def test_bare_dsc_trust(tmp_path: Path, signer: TestSigner) -> None:
    dsc = tmp_path / "dsc.der"
    dsc.write_bytes(signer.certificate_der)
    done = _run("check", "--dsc", str(dsc), "--now", NOW_ISO, _hc1(signer))
    # signature verifies, but no value sets in a bare DSC list: could not decide
    assert done.returncode == 2 and "VALUE_SETS_UNAVAILABLE" in done.stdout


def test_sync_needs_a_pin(tmp_path: Path) -> None:
    done = _run("--dir", str(tmp_path), "sync", "--url", "http://127.0.0.1:8402/x")
    assert done.returncode == 2 and "pin" in done.stderr


def _video(path: Path, texts: list[str | None]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (1280, 720))
    assert writer.isOpened()
    for text in texts:
        frame = np.full((720, 1280, 3), 200, dtype=np.uint8)
        if text is not None:
            qr = cv2.QRCodeEncoder.create().encode(text)
            qr = cv2.resize(qr, None, fx=5, fy=5, interpolation=cv2.INTER_NEAREST)
            qr = cv2.copyMakeBorder(qr, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=255)
            y, x = (720 - qr.shape[0]) // 2, (1280 - qr.shape[1]) // 2
            frame[y : y + qr.shape[0], x : x + qr.shape[1]] = cv2.cvtColor(qr, cv2.COLOR_GRAY2BGR)
        writer.write(frame)
    writer.release()


def test_camera_on_a_video_file(trust_dir: Path, signer: TestSigner, tmp_path: Path) -> None:
    good, stranger = _hc1(signer), _hc1(make_signer())
    video = tmp_path / "desk.avi"
    _video(video, [None, good, good, good, None, stranger, stranger])
    done = _run("--dir", str(trust_dir), "camera", str(video), "--now", NOW_ISO)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, lines  # one verdict per certificate shown, not per frame
    assert lines[0].startswith("VALID") and "山田 花子" in lines[0] and "1980-04-01" in lines[0]
    assert lines[1].startswith("INVALID KID_UNKNOWN") and "山田" not in lines[1]
    assert sorted(p.name for p in trust_dir.iterdir()) == sorted(
        [BUNDLE_FILE, PIN_FILE, "desk.avi"]
    )


def test_bad_now_is_a_usage_error(trust_dir: Path, signer: TestSigner) -> None:
    done = _run("--dir", str(trust_dir), "check", "--now", "yesterday", _hc1(signer))
    assert done.returncode == 2 and "BAD_NOW" in done.stderr


def test_sync_with_a_pin_then_check_offline(
    serve_bundle: Callable[[bytes], str],
    bundle: bytes,
    bundle_key: ec.EllipticCurvePrivateKey,
    signer: TestSigner,
    tmp_path: Path,
) -> None:
    url = serve_bundle(bundle)
    pin = tmp_path / "bundle-key.pem"
    pin.write_bytes(public_pem(bundle_key))
    folder = tmp_path / "trust"
    first = _run("--dir", str(folder), "sync", "--url", url, "--pin", str(pin))
    assert first.returncode == 0, first.stderr
    assert "updated: sequence 1" in first.stdout
    again = _run("--dir", str(folder), "sync", "--url", url)  # the pin was kept
    assert again.returncode == 0 and "unchanged" in again.stdout
    done = _run("--dir", str(folder), "check", "--now", NOW_ISO, _hc1(signer))
    assert done.returncode == 0, done.stdout + done.stderr
