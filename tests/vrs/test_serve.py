"""``vrs serve`` as a real process: it binds, answers over HTTP and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import pytest

from vrs.cli import main


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> tuple[int, str, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, response.headers["content-type"], json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], json.load(error)


@pytest.mark.slow
def test_vrs_serve_answers_health_and_readiness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'vrs.db'}"
    monkeypatch.setenv("VRS_DATABASE_URL", url)
    monkeypatch.delenv("VRS_ENV", raising=False)
    assert main(["db", "upgrade"]) == 0
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "vrs", "serve", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "VRS_DATABASE_URL": url, "VRS_DATA_DIR": str(tmp_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "vrs serve exited early: " + log_text(log)
            try:
                health = get(base + "/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "no answer in 30 s: " + log_text(log)
                time.sleep(0.1)

        assert health == (200, "application/json", {"status": "ok"})
        assert get(base + "/readyz")[::2] == (200, {"status": "ready"})
        status, content_type, body = get(base + "/no-such-page")
        assert (status, content_type, body["code"]) == (
            404,
            "application/problem+json",
            "NOT_FOUND",
        )
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
    assert server.returncode in (0, -15)


def log_text(log: IO[str]) -> str:
    log.seek(0)
    return log.read()
