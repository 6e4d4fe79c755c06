"""Trust sync: ETag round trips, refusal of bad or older bundles, and a real HTTP server."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.verifier.conftest import NOW
from verifier import Status, SyncError, TrustBundleError, verify
from verifier.sync import BUNDLE_FILE, Response, UrllibTransport, load_cached, sync
from verifier.testing import TestSigner, make_trust_bundle, public_pem, sample_vaccination, sign_hc1


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest() + '"'


class Server:
    """What the service's GET /v1/trust/bundle does: strong ETag and If-None-Match → 304."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests: list[Mapping[str, str]] = []

    def get(self, url: str, headers: Mapping[str, str]) -> Response:
        self.requests.append(dict(headers))
        if headers.get("If-None-Match") == _etag(self.body):
            return Response(304, {"etag": _etag(self.body)}, b"")
        return Response(200, {"etag": _etag(self.body)}, self.body)


def test_sync_then_304_then_new_bundle(
    tmp_path: Path, signer: TestSigner, bundle: bytes, bundle_key: ec.EllipticCurvePrivateKey
) -> None:
    server = Server(bundle)
    pin = public_pem(bundle_key)
    first = sync(
        "https://vrs.example/v1/trust/bundle", pinned_key=pin, directory=tmp_path, transport=server
    )
    assert first.changed and first.store.sequence == 1
    again = sync(
        "https://vrs.example/v1/trust/bundle", pinned_key=pin, directory=tmp_path, transport=server
    )
    assert not again.changed and server.requests[-1]["If-None-Match"] == _etag(bundle)
    server.body = make_trust_bundle(bundle_key, [signer.certificate_der], now=NOW, sequence=2)
    newer = sync(
        "https://vrs.example/v1/trust/bundle", pinned_key=pin, directory=tmp_path, transport=server
    )
    assert newer.changed and newer.store.sequence == 2
    assert load_cached(tmp_path, pin).sequence == 2


def test_a_bad_bundle_is_not_kept(
    tmp_path: Path, bundle: bytes, bundle_key: ec.EllipticCurvePrivateKey
) -> None:
    pin = public_pem(bundle_key)
    sync("u", pinned_key=pin, directory=tmp_path, transport=Server(bundle))
    forged_key = ec.generate_private_key(ec.SECP256R1())
    forged = make_trust_bundle(forged_key, [], now=NOW, sequence=5)
    with pytest.raises(TrustBundleError):
        sync("u", pinned_key=pin, directory=tmp_path, transport=Server(forged))
    assert (tmp_path / BUNDLE_FILE).read_bytes() == bundle


def test_an_older_bundle_is_refused(
    tmp_path: Path, signer: TestSigner, bundle_key: ec.EllipticCurvePrivateKey
) -> None:
    pin = public_pem(bundle_key)
    newer = make_trust_bundle(bundle_key, [signer.certificate_der], now=NOW, sequence=7)
    older = make_trust_bundle(bundle_key, [signer.certificate_der], now=NOW, sequence=6)
    sync("u", pinned_key=pin, directory=tmp_path, transport=Server(newer))
    with pytest.raises(SyncError) as caught:
        sync("u", pinned_key=pin, directory=tmp_path, transport=Server(older))
    assert caught.value.code == "BUNDLE_ROLLBACK"


def test_http_errors_and_etag_mismatch(
    tmp_path: Path, bundle: bytes, bundle_key: ec.EllipticCurvePrivateKey
) -> None:
    pin = public_pem(bundle_key)

    class Broken:
        def __init__(self, status: int, etag: str) -> None:
            self.status, self.etag = status, etag

        def get(self, url: str, headers: Mapping[str, str]) -> Response:
            return Response(self.status, {"etag": self.etag}, bundle)

    with pytest.raises(SyncError) as caught:
        sync("u", pinned_key=pin, directory=tmp_path, transport=Broken(500, _etag(bundle)))
    assert caught.value.code == "SYNC_HTTP_STATUS"
    with pytest.raises(SyncError) as caught:
        sync("u", pinned_key=pin, directory=tmp_path, transport=Broken(200, _etag(b"other")))
    assert caught.value.code == "SYNC_ETAG_MISMATCH"


def test_sync_over_real_http_then_verify_offline(
    serve_bundle: Callable[[bytes], str],
    bundle: bytes,
    tmp_path: Path,
    signer: TestSigner,
    bundle_key: ec.EllipticCurvePrivateKey,
) -> None:
    http_server = serve_bundle(bundle)
    pin = public_pem(bundle_key)
    assert sync(http_server, pinned_key=pin, directory=tmp_path).changed
    assert not sync(
        http_server, pinned_key=pin, directory=tmp_path, transport=UrllibTransport()
    ).changed
    trust = load_cached(tmp_path, pin)  # offline from here
    hc1 = sign_hc1(
        signer,
        sample_vaccination(),
        issued_at=NOW - timedelta(days=20),
        expires=NOW + timedelta(days=90),
    )
    assert verify(hc1, trust=trust, now=NOW).status is Status.VALID


def test_unreachable_server(tmp_path: Path, bundle_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(SyncError) as caught:
        sync("http://127.0.0.1:8409/none", pinned_key=public_pem(bundle_key), directory=tmp_path)
    assert caught.value.code == "SYNC_NETWORK"
