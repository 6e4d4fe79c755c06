"""A certificate issued by the running service verifies offline from a bundle synced over HTTP.

The service (the real app, its database and key ring) is served by uvicorn on 127.0.0.1; the
verifier syncs ``GET /v1/trust/bundle`` with ``verifier.sync`` (ETag, 304 on the second sync),
pinning the key it was given out of band, and then verifies with every socket disabled.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

import verifier
from tests.conftest import NOW
from tests.vrs.conftest import taro  # noqa: F401 - the signed-in resident fixture
from verifier.sync import load_cached, sync


def _free_port() -> int:
    for port in range(8402, 8409):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("ports 8402-8408 are all taken")


@pytest.fixture
def served(app: FastAPI, client: TestClient) -> Iterator[str]:
    """The app the test client already started, also on a real port (lifespan ran once)."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_issued_by_the_service_verified_offline_after_sync(
    client: TestClient,
    served: str,
    taro: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    issued = client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro)
    assert issued.status_code == 201, issued.text
    hc1 = issued.json()["hc1"]
    pin = client.get("/v1/trust/bundle-key").content  # in real life: handed over out of band

    first = sync(f"{served}/v1/trust/bundle", pinned_key=pin, directory=tmp_path)
    assert first.changed and first.etag
    again = sync(f"{served}/v1/trust/bundle", pinned_key=pin, directory=tmp_path)
    assert not again.changed

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the verifier touched the network")

    later = NOW + timedelta(days=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "socket", no_network)
        patch.setattr(socket, "create_connection", no_network)
        trust = load_cached(tmp_path, pin)
        for mode in ("venue", "border:DE"):
            result = verifier.verify(verifier.decode(hc1), trust=trust, now=later, mode=mode)
            assert result.status is verifier.Status.VALID, (mode, result.failed)
    assert result.holder is not None and result.holder.family_name_standardised == "YAMADA"
