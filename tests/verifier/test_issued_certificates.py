"""Certificates issued by our own issuer (``certs.issue``) verify offline, and revoke.

The issuer side comes from ``certs.testing`` (a throwaway CSCA and DSC made by ``keys``); the
trust bundle is made by ``certs.trustbundle`` and signed by a ``keys.TrustBundleSigner``, so the
producer's and the verifier's reading of the bundle format (and of the bundle KID) are checked
against each other.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from certs.testing import TEST_NOW, EphemeralKey, make_certificate, make_test_signer
from certs.testing import sample_vaccination as issued_vaccination
from certs.trustbundle import BundleDsc, Revocations, bundle_payload, sign_bundle
from keys import TrustBundleSigner
from verifier import Code, Status, decode, load_trust_bundle, verify
from verifier.sync import load_cached, sync
from verifier.testing import sample_rules, sample_value_sets


def _bundle_signed_by_keys(
    signer_der: bytes, revoked: list[bytes] | None = None
) -> tuple[bytes, bytes]:
    """A trust bundle over one DSC made by the issuer's own producer (``certs.trustbundle``)
    and signed by a ``keys.TrustBundleSigner``; returns the bundle and the key to pin."""
    payload = bundle_payload(
        sequence=1,
        issued_at=TEST_NOW - timedelta(hours=1),
        valid_until=TEST_NOW + timedelta(days=7),
        dscs=[BundleDsc(signer_der)],
        cscas=[],
        value_sets=sample_value_sets(),
        rules=sample_rules(),
        revocations=Revocations(signature=revoked or []),
    )
    bundle_signer = TrustBundleSigner(EphemeralKey("bundle"))
    return sign_bundle(payload, bundle_signer), bundle_signer.public_key_pem


def test_our_issued_certificate_verifies_in_every_mode() -> None:
    signer = make_test_signer()
    issued = make_certificate(signer=signer)
    bundle, pin = _bundle_signed_by_keys(signer.certificate_der)
    trust = load_trust_bundle(bundle, pin)
    for mode in ("venue", "border:DE"):
        result = verify(decode(issued.hc1), trust=trust, now=TEST_NOW, mode=mode)
        assert result.status is Status.VALID, (mode, result.failed)
        assert result.holder is not None and result.holder.family_name == "山田"
    # the certificate expires when the issuer says, and not before
    late = verify(issued.hc1, trust=trust, now=issued.expires_at + timedelta(minutes=6))
    assert late.code in (Code.CERT_EXPIRED, Code.TRUST_STALE)


def test_an_incomplete_series_from_our_issuer_fails_the_venue_rules() -> None:
    signer = make_test_signer()
    issued = make_certificate(signer=signer, vaccination=issued_vaccination(dose_number=1))
    bundle, pin = _bundle_signed_by_keys(signer.certificate_der)
    result = verify(issued.hc1, trust=load_trust_bundle(bundle, pin), now=TEST_NOW)
    assert (result.status, result.code) == (Status.INVALID, Code.RULE_FAILED)


def test_the_issuer_s_revocation_hash_revokes_it() -> None:
    signer = make_test_signer()
    issued = make_certificate(signer=signer)
    bundle, pin = _bundle_signed_by_keys(signer.certificate_der, revoked=[issued.signature_hash])
    result = verify(issued.hc1, trust=load_trust_bundle(bundle, pin), now=TEST_NOW)
    assert (result.status, result.code) == (Status.INVALID, Code.REVOKED)


def test_issued_certificate_verifies_from_a_synced_bundle_with_the_network_off(
    serve_bundle: Callable[[bytes], str], tmp_path: Path
) -> None:
    signer = make_test_signer()
    issued = make_certificate(signer=signer)
    bundle, pin = _bundle_signed_by_keys(signer.certificate_der)
    assert sync(serve_bundle(bundle), pinned_key=pin, directory=tmp_path).changed

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the verifier touched the network")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "socket", no_network)
        patch.setattr(socket, "create_connection", no_network)
        trust = load_cached(tmp_path, pin)
        result = verify(decode(issued.hc1), trust=trust, now=TEST_NOW, mode="border:DE")
    assert result.status is Status.VALID, result.failed
