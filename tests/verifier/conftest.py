"""Fixtures for the verifier tests: fresh test signers, a signed trust bundle, a fixed clock."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from verifier import TrustStore, load_trust_bundle
from verifier.testing import TestSigner, make_signer, make_trust_bundle, public_pem

NOW = datetime(2021, 9, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def signer() -> TestSigner:
    return make_signer()


@pytest.fixture(scope="session")
def bundle_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def bundle(signer: TestSigner, bundle_key: ec.EllipticCurvePrivateKey) -> bytes:
    return make_trust_bundle(bundle_key, [signer.certificate_der], now=NOW - timedelta(days=1))


@pytest.fixture(scope="session")
def trust(bundle: bytes, bundle_key: ec.EllipticCurvePrivateKey) -> TrustStore:
    return load_trust_bundle(bundle, public_pem(bundle_key))


def _bind(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    """A server on the first free port of the verifier's range (8409 stays unused: the
    unreachable-server test points there)."""
    for port in range(8401, 8409):
        try:
            return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError:
            continue
    raise RuntimeError("ports 8401-8408 are all taken")


@pytest.fixture
def serve_bundle() -> Iterator[Callable[[bytes], str]]:
    """Serve a trust bundle over real HTTP on 127.0.0.1 (a free port of 8401-8408) the way
    the service's ``GET /v1/trust/bundle`` does (strong ETag, ``If-None-Match`` → 304); the
    fixture returns a function that starts a server and gives its URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(body: bytes) -> str:
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/cose")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        server = _bind(Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1/trust/bundle"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
