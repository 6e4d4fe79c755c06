"""Fixtures for the verifier tests: fresh test signers, a signed trust bundle, a fixed clock."""

from __future__ import annotations

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
