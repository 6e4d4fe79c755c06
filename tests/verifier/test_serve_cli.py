"""``vrs-verify serve`` as a process: the checker's page and its verify endpoint on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from certs.testing import TEST_NOW, make_certificate, make_test_signer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    signer = make_test_signer(now=TEST_NOW)
    hc1 = make_certificate(signer=signer, now=TEST_NOW).hc1
    dsc = tmp_path / "dsc.der"
    dsc.write_bytes(signer.certificate_der)
    port = _free_port()
    now = (TEST_NOW + timedelta(hours=1)).isoformat()
    command = [sys.executable, "-m", "verifier.cli", "--dir", str(tmp_path), "serve"]
    command += ["--port", str(port), "--dsc", str(dsc), "--now", now]
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "vrs-verify serve did not answer"
                time.sleep(0.1)
        yield url, hc1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_the_served_page_and_verdict(served: tuple[str, str]) -> None:
    url, hc1 = served
    page = httpx.get(url, headers={"Accept-Language": "ja"})
    assert page.status_code == 200 and '<html lang="ja">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(url + "checker.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(url + "../cli.py").status_code == 404
    verdict = httpx.post(url + "verify", content=hc1.encode()).json()
    # bare DSC trust has no rules or value sets: the verdict cannot be VALID, and says why
    assert verdict["status"] == "ERROR" and verdict["code"]
    assert set(verdict) == {"status", "code", "name", "date_of_birth", "name_standardised"}
