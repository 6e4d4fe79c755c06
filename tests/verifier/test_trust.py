"""The signed trust bundle: pinned key, refused tampering, staleness, revocation lists."""

from __future__ import annotations

import base64
from datetime import timedelta

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from certs import wire
from tests.verifier.conftest import NOW
from verifier import Code, Status, TrustBundleError, decode, load_trust_bundle, verify
from verifier.testing import (
    TestSigner,
    make_trust_bundle,
    public_pem,
    sample_vaccination,
    sign_hc1,
)


def _hc1(signer: TestSigner, uvci: str = "URN:UVCI:01:JP:VRS/0000000001#X") -> str:
    return sign_hc1(
        signer,
        sample_vaccination(uvci=uvci),
        issued_at=NOW - timedelta(days=30),
        expires=NOW + timedelta(days=300),
    )


def test_bundle_loads_with_its_pin(bundle: bytes, bundle_key: ec.EllipticCurvePrivateKey) -> None:
    store = load_trust_bundle(bundle, public_pem(bundle_key))
    assert store.sequence == 1 and store.issuer == "JP"
    assert set(store.modes) == {"venue", "border:DE"}


def test_bundle_signed_by_another_key_is_refused(bundle: bytes) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TrustBundleError) as caught:
        load_trust_bundle(bundle, public_pem(other))
    assert caught.value.code == "BUNDLE_KEY_MISMATCH"


def test_tampered_bundle_is_refused(bundle: bytes, bundle_key: ec.EllipticCurvePrivateKey) -> None:
    sign1 = wire.parse_sign1(bundle)
    payload = sign1.payload.replace(b'"sequence":1', b'"sequence":9')
    assert payload != sign1.payload
    tampered = cbor2.dumps(
        cbor2.CBORTag(18, [sign1.protected, sign1.unprotected, payload, sign1.signature])
    )
    with pytest.raises(TrustBundleError) as caught:
        load_trust_bundle(tampered, public_pem(bundle_key))
    assert caught.value.code == "BUNDLE_SIGNATURE_INVALID"


@pytest.mark.parametrize("junk", [b"", b"\x00" * 10, b"not cose", cbor2.dumps([1, 2, 3])])
def test_junk_is_refused(junk: bytes, bundle_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(TrustBundleError) as caught:
        load_trust_bundle(junk, public_pem(bundle_key))
    assert caught.value.code == "BUNDLE_MALFORMED"


def test_stale_bundle_gives_error(
    signer: TestSigner, bundle_key: ec.EllipticCurvePrivateKey
) -> None:
    old = make_trust_bundle(
        bundle_key,
        [signer.certificate_der],
        now=NOW - timedelta(days=10),
        valid_for=timedelta(days=7),
    )
    trust = load_trust_bundle(old, public_pem(bundle_key))
    result = verify(decode(_hc1(signer)), trust=trust, now=NOW)
    assert (result.status, result.code) == (Status.ERROR, Code.TRUST_STALE)


@pytest.mark.parametrize("kind", ["SIGNATURE", "UCI", "COUNTRYCODEUCI"])
def test_revoked_certificates(
    kind: str, signer: TestSigner, bundle_key: ec.EllipticCurvePrivateKey
) -> None:
    uvci = "URN:UVCI:01:JP:VRS/0000000042#Q"
    hc1 = _hc1(signer, uvci)
    sign1 = decode(hc1).sign1
    assert sign1 is not None
    entry = {
        "SIGNATURE": wire.signature_hash(sign1.signature, wire.ALG_ES256),
        "UCI": wire.uci_hash(uvci),
        "COUNTRYCODEUCI": wire.countrycode_uci_hash("JP", uvci),
    }[kind]
    bundle = make_trust_bundle(
        bundle_key,
        [signer.certificate_der],
        now=NOW - timedelta(days=1),
        revocations={kind: [entry]},
    )
    trust = load_trust_bundle(bundle, public_pem(bundle_key))
    result = verify(hc1, trust=trust, now=NOW)
    assert (result.status, result.code) == (Status.INVALID, Code.REVOKED)
    assert verify(_hc1(signer), trust=trust, now=NOW).status is Status.VALID


def test_bundle_with_an_invalid_rule_is_refused(
    signer: TestSigner, bundle_key: ec.EllipticCurvePrivateKey
) -> None:
    rule = {
        "Identifier": "X",
        "Country": "JP",
        "Version": "1.0.0",
        "CertificateType": "General",
        "ValidFrom": "2021-01-01T00:00:00Z",
        "ValidTo": "2030-01-01T00:00:00Z",
        "Logic": {"all": [1]},
    }
    bundle = make_trust_bundle(bundle_key, [], now=NOW, rules={"venue": [rule]})
    with pytest.raises(TrustBundleError) as caught:
        load_trust_bundle(bundle, public_pem(bundle_key))
    assert caught.value.code == "BUNDLE_RULE_INVALID"


def _signed(bundle_key: ec.EllipticCurvePrivateKey, payload: bytes) -> bytes:
    """Any payload, correctly signed as a bundle: for content the key holder got wrong."""
    from cryptography.hazmat.primitives import hashes

    from verifier.trust import bundle_kid

    protected = {
        wire.HEADER_ALG: wire.ALG_ES256,
        wire.HEADER_KID: bundle_kid(bundle_key.public_key()),
    }
    to_sign = wire.sig_structure(wire.protected_bytes(protected), payload)
    signature = wire.es256_der_to_raw(bundle_key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
    return wire.encode_sign1(protected, {}, payload, signature)


_ZERO_KID = base64.b64encode(wire.kid_of(bytes(3))).decode()  # the KID of the DER "AAAA"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"sequence": "x"}, "BUNDLE_MALFORMED"),
        ({"valid_until": "tomorrow"}, "BUNDLE_MALFORMED"),
        ({"dscs": [{"kid": _ZERO_KID, "certificate": "AAAA"}]}, "DSC_UNPARSABLE"),
        ({"dscs": ["x"]}, "BUNDLE_MALFORMED"),
        ({"value_sets": []}, "BUNDLE_MALFORMED"),
        ({"revocations": {"UCI": ["%%%"]}}, "BUNDLE_MALFORMED"),
        ({"version": 2}, "BUNDLE_VERSION"),
        ({"format": "other"}, "BUNDLE_MALFORMED"),
        (
            {"rules": {"venue": [{"Identifier": "R", "Country": "JP", "Version": "1.0.0",
              "CertificateType": "General", "ValidFrom": "soon", "ValidTo": "later",
              "Logic": True}]}},
            "BUNDLE_RULE_INVALID",
        ),
    ],
)  # fmt: skip
def test_malformed_content_under_a_good_signature(
    change: dict[str, object], code: str, bundle: bytes, bundle_key: ec.EllipticCurvePrivateKey
) -> None:
    import json

    body = json.loads(wire.parse_sign1(bundle).payload)
    body.update(change)
    with pytest.raises(TrustBundleError) as caught:
        load_trust_bundle(_signed(bundle_key, json.dumps(body).encode()), public_pem(bundle_key))
    assert caught.value.code == code
