"""The trust bundle v1: a COSE_Sign1 over canonical JSON, signed by the pinned bundle key."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import CoseMessage, Sign1Message

from certs import TrustBundleError
from certs.testing import TEST_NOW, EphemeralKey, make_certificate, make_test_signer
from certs.trustbundle import (
    BundleDsc,
    Revocations,
    bundle_payload,
    encode_payload,
    sign_bundle,
)
from keys import CertificateType, TrustBundleSigner

SIGNER = make_test_signer()
BUNDLE_SIGNER = TrustBundleSigner(EphemeralKey("bundle"))
VALUE_SETS = {
    "disease-agent-targeted": {
        "valueSetId": "disease-agent-targeted",
        "valueSetDate": "2021-04-27",
        "valueSetValues": {
            "840539006": {
                "display": "COVID-19",
                "lang": "en",
                "active": True,
                "version": "http://snomed.info/sct/900000000000207008/version/20210131",
                "system": "http://snomed.info/sct",
            }
        },
    }
}
RULE = {"Identifier": "VR-JP-0001", "Type": "Acceptance", "Country": "JP", "Logic": {"var": "x"}}


def _payload(**overrides: Any) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "sequence": 7,
        "issued_at": TEST_NOW,
        "valid_until": TEST_NOW + timedelta(days=2),
        "dscs": [BundleDsc(SIGNER.certificate_der)],
        "cscas": [SIGNER.csca_der],
        "value_sets": VALUE_SETS,
        "rules": {"venue": [RULE], "border:DE": []},
        "revocations": Revocations(signature=[make_certificate(signer=SIGNER).signature_hash]),
    }
    parts.update(overrides)
    return bundle_payload(**parts)


def test_the_payload_carries_dscs_value_sets_rules_and_revocations() -> None:
    issued = make_certificate(signer=SIGNER)
    payload = _payload(revocations=Revocations(signature=[issued.signature_hash]))
    assert payload["format"] == "vrs-trust-bundle"
    assert payload["version"] == 1
    assert payload["issuer"] == "JP"
    assert payload["sequence"] == 7
    assert payload["issued_at"] == "2026-01-15T03:00:00Z"
    assert payload["valid_until"] == "2026-01-17T03:00:00Z"
    (dsc,) = payload["dscs"]
    assert base64.b64decode(dsc["kid"]) == SIGNER.kid
    assert base64.b64decode(dsc["certificate"]) == SIGNER.certificate_der
    assert dsc["country"] == "JP"
    assert dsc["not_before"] == "2026-01-15T03:00:00Z"
    assert dsc["certificate_types"] == ["v", "t", "r"]
    assert payload["cscas"] == [base64.b64encode(SIGNER.csca_der).decode()]
    assert payload["value_sets"] == VALUE_SETS
    assert payload["rules"] == {"venue": [RULE], "border:DE": []}
    assert payload["revocations"] == {
        "SIGNATURE": [base64.b64encode(issued.signature_hash).decode()],
        "UCI": [],
        "COUNTRYCODEUCI": [],
    }


def test_a_dsc_lists_only_the_types_it_may_sign() -> None:
    vaccination_only = make_test_signer(types=frozenset({CertificateType.VACCINATION}))
    payload = _payload(dscs=[BundleDsc(vaccination_only.certificate_der)])
    assert payload["dscs"][0]["certificate_types"] == ["v"]


def test_the_json_is_canonical_utf8_with_sorted_keys() -> None:
    encoded = encode_payload({"b": 1, "a": {"z": "日本", "y": [1, 2]}})
    assert encoded == '{"a":{"y":[1,2],"z":"日本"},"b":1}'.encode()


def test_the_signed_bundle_verifies_with_the_pinned_key_in_pycose() -> None:
    payload = _payload()
    bundle = sign_bundle(payload, BUNDLE_SIGNER)
    assert cbor2.loads(bundle).tag == 18
    message = CoseMessage.decode(bundle)
    assert isinstance(message, Sign1Message)
    pinned = serialization.load_pem_public_key(BUNDLE_SIGNER.public_key_pem)
    assert isinstance(pinned, ec.EllipticCurvePublicKey)
    numbers = pinned.public_numbers()
    message.key = EC2Key(crv=P256, x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))
    assert message.verify_signature()
    spki = pinned.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    protected = cbor2.loads(cbor2.loads(bundle).value[0])
    assert protected == {1: -7, 4: hashlib.sha256(spki).digest()[:8]}
    assert json.loads(message.payload) == payload


def test_a_bundle_signed_by_another_key_does_not_verify_with_the_pinned_one() -> None:
    other = TrustBundleSigner(EphemeralKey("other"))
    message = CoseMessage.decode(sign_bundle(_payload(), other))
    pinned = serialization.load_pem_public_key(BUNDLE_SIGNER.public_key_pem)
    assert isinstance(pinned, ec.EllipticCurvePublicKey)
    numbers = pinned.public_numbers()
    message.key = EC2Key(crv=P256, x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))
    assert not message.verify_signature()


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"sequence": -1}, "BAD_SEQUENCE"),
        ({"sequence": True}, "BAD_SEQUENCE"),
        ({"sequence": "7"}, "BAD_SEQUENCE"),
        ({"valid_until": TEST_NOW}, "BAD_TIME"),
        ({"valid_until": TEST_NOW.replace(tzinfo=None)}, "BAD_TIME"),
        ({"dscs": [b"not a BundleDsc"]}, "BAD_DSC"),
        ({"cscas": [b"\x30\x00"]}, "BAD_CSCA"),
        ({"value_sets": {"x": "y"}}, "BAD_VALUE_SETS"),
        ({"rules": {"anywhere": []}}, "BAD_RULES"),
        ({"rules": {"border:jp": []}}, "BAD_RULES"),
        ({"rules": {"venue": "rule"}}, "BAD_RULES"),
        ({"rules": {"venue": [1]}}, "BAD_RULES"),
        ({"revocations": Revocations(signature=[b"short"])}, "BAD_REVOCATION"),
        ({"revocations": {"SIGNATURE": []}}, "BAD_REVOCATION"),
        ({"issuer": "Japan"}, "BAD_ISSUER"),
    ],
)
def test_bad_parts_are_refused_with_a_code(overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(TrustBundleError) as caught:
        _payload(**overrides)
    assert caught.value.code == code


@pytest.mark.parametrize(("der", "country"), [(b"garbage", "JP"), (b"", "JP"), (None, "JP")])
def test_a_bad_dsc_is_refused(der: Any, country: str) -> None:
    with pytest.raises(TrustBundleError) as caught:
        BundleDsc(der, country)
    assert caught.value.code == "BAD_DSC"


def test_a_value_that_is_not_json_is_refused() -> None:
    with pytest.raises(TrustBundleError) as caught:
        encode_payload({"x": float("nan")})
    assert caught.value.code == "BAD_PAYLOAD"
    with pytest.raises(TrustBundleError):
        encode_payload({"x": object()})


def test_the_trust_bundle_doc_names_every_payload_key() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "trust-bundle.md").read_text()
    for key in _payload():
        assert f"`{key}`" in doc


def test_a_signer_that_is_not_es256_is_refused() -> None:
    class Rsa:
        kid = b"12345678"
        algorithm = "PS256"

        def sign(self, data: bytes) -> bytes:  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(TrustBundleError) as caught:
        sign_bundle(_payload(), Rsa())  # type: ignore[arg-type]
    assert caught.value.code == "BAD_SIGNER"
