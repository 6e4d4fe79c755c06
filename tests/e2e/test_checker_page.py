"""The checker's page (``vrs-verify serve``) in a real browser: a photo of a genuine
certificate shows a large VALID with name and birth date; a photo of one whose content was
changed after signing shows INVALID; a photo without a QR says so. The server keeps nothing."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import verifier
from certs import qr_png, wire
from certs.testing import make_certificate, make_test_signer
from tests.e2e.browser import Steps
from verifier.testing import make_trust_bundle, public_pem
from verifier.web import CheckerServer

T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def photo_of(png: bytes, path: Path, seed: int = 7) -> Path:
    """The QR as a phone would see it: on a desk, turned a little, noisy, JPEG."""
    rng = np.random.default_rng(seed)
    qr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    qr = cv2.resize(qr, (520, 520), interpolation=cv2.INTER_NEAREST)
    canvas = np.full((720, 1280), 170, np.uint8)
    canvas[100:620, 380:900] = qr
    turn = cv2.getRotationMatrix2D((640, 360), 4.0, 1.0)
    canvas = cv2.warpAffine(canvas, turn, (1280, 720), borderValue=170)
    noisy = canvas.astype(np.float32) + rng.normal(0, 6, canvas.shape)
    image = np.clip(cv2.GaussianBlur(noisy, (3, 3), 0.8), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    path.write_bytes(jpeg.tobytes())
    return path


def tampered(hc1: str) -> str:
    """The same certificate with the family name changed after signing (signature kept)."""
    sign1 = wire.parse_sign1(wire.zlib_decompress(wire.b45decode(wire.hc1_strip(hc1))))
    payload = sign1.payload.replace(b"YAMADA", b"YAMADB")
    assert payload != sign1.payload
    cose = wire.encode_sign1(sign1.protected_header, sign1.unprotected, payload, sign1.signature)
    return wire.hc1_encode(cose)


@pytest.fixture
def checker() -> Iterator[tuple[CheckerServer, str]]:
    signer = make_test_signer(now=T0 - timedelta(days=30))
    issued = make_certificate(signer=signer, now=T0 - timedelta(days=1))
    bundle_key = ec.generate_private_key(ec.SECP256R1())
    bundle = make_trust_bundle(bundle_key, [signer.certificate_der], now=T0)
    trust = verifier.load_trust_bundle(bundle, public_pem(bundle_key))
    server = CheckerServer(trust, mode="venue", clock=lambda: T0, port=0).start()
    try:
        yield server, issued.hc1
    finally:
        server.stop()


def test_the_checker_page_verifies_a_photo_and_rejects_a_tampered_one(
    page: Any, checker: tuple[CheckerServer, str], steps: Steps, tmp_path: Path
) -> None:
    server, hc1 = checker
    page.goto(server.url + "?lang=en")
    steps.shot(page, "checker")
    verdict = page.get_by_role("status")

    page.get_by_label("Photo or image of the certificate").set_input_files(
        str(photo_of(qr_png(hc1), tmp_path / "genuine.jpg"))
    )
    page.get_by_role("button", name="Check").click()
    page.locator("#verdict.VALID").wait_for()
    assert page.locator("#verdict-word").inner_text() == "VALID"
    assert page.locator("#verdict-name").inner_text().startswith("山田 太郎")
    assert page.locator("#verdict-birth").inner_text() == "1980-04-01"
    assert verdict.count() == 1
    steps.shot(page, "valid")

    page.get_by_label("Photo or image of the certificate").set_input_files(
        str(photo_of(qr_png(tampered(hc1)), tmp_path / "tampered.jpg"))
    )
    page.get_by_role("button", name="Check").click()
    page.locator("#verdict.INVALID").wait_for()
    assert page.locator("#verdict-word").inner_text() == "INVALID"
    assert page.locator("#verdict-name").inner_text() == "—"  # unverified data is never shown
    steps.shot(page, "invalid")

    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((480, 640), 200, np.uint8))
    page.get_by_label("Photo or image of the certificate").set_input_files(str(blank))
    page.get_by_role("button", name="Check").click()
    page.locator("#verdict.ERROR").wait_for()
    assert page.locator("#verdict-code").inner_text() == "No QR code found"
    steps.shot(page, "no-qr")


def test_the_checker_refuses_other_hosts_and_huge_uploads(
    checker: tuple[CheckerServer, str],
) -> None:
    server, hc1 = checker
    url = server.url + "verify"
    rebound = httpx.post(url, content=hc1.encode(), headers={"Host": "evil.example"})
    assert rebound.status_code == 403
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("POST", "/verify")
    conn.putheader("Content-Length", str(64 * 1024 * 1024))  # refused before any body is read
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert httpx.post(url, content=hc1.encode()).json()["status"] == "VALID"


def test_the_checker_serves_loopback_only() -> None:
    trust = verifier.trust_from_certificates([make_test_signer(now=T0).certificate_der])
    with pytest.raises(ValueError, match="loopback"):
        CheckerServer(trust, mode="venue", clock=lambda: T0, host="0.0.0.0", port=0)  # noqa: S104
