"""Test support for users of the verifier: signers, signed ``HC1:`` strings and trust bundles.

Everything here makes fresh keys in memory; nothing is for production. A test that wants to check
its own verifier set-up end to end::

    signer = make_signer()
    bundle_key = ec.generate_private_key(ec.SECP256R1())
    bundle = make_trust_bundle(bundle_key, [signer.certificate_der], now=now)
    trust = verifier.load_trust_bundle(bundle, public_pem(bundle_key))
    hc1 = sign_hc1(signer, sample_vaccination(), issued_at=now, expires=now + timedelta(days=365))
    assert verifier.verify(hc1, trust=trust, now=now).status is Status.VALID
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from certs import wire
from verifier.trust import bundle_kid

__all__ = [
    "EKU_ARCS",
    "TestSigner",
    "make_signer",
    "make_trust_bundle",
    "public_pem",
    "sample_rules",
    "sample_vaccination",
    "sample_value_sets",
    "sign_cose",
    "sign_hc1",
]

#: The DCC extended-key-usage OID prefixes: current and legacy arc; suffix .1 t, .2 v, .3 r.
EKU_ARCS = {"current": "1.3.6.1.4.1.1847.2021.1", "legacy": "1.3.6.1.4.1.0.1847.2021.1"}
_TYPE_SUFFIX = {"t": "1", "v": "2", "r": "3"}


@dataclass(frozen=True)
class TestSigner:
    """A document signer for tests: its key, certificate and KID."""

    __test__ = False  # not a pytest test class

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    certificate_der: bytes
    csca_der: bytes
    kid: bytes
    alg: int

    def sign(self, data: bytes) -> bytes:
        """The raw COSE signature (r || s for ES256)."""
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return wire.es256_der_to_raw(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return self.key.sign(data, pss, hashes.SHA256())


def _name(common_name: str, country: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_signer(
    *,
    types: Iterable[str] | None = ("v", "t", "r"),
    arc: str = "current",
    algorithm: str = "ES256",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    country: str = "JP",
) -> TestSigner:
    """A CSCA and a DSC it signed, with the DCC key-usage OIDs for ``types`` on ``arc``.

    ``types=None`` leaves the extended-key-usage extension out (allowed for every type).
    """
    start = not_before or datetime(2021, 1, 1, tzinfo=UTC)
    end = not_after or datetime(2031, 1, 1, tzinfo=UTC)
    csca_key = ec.generate_private_key(ec.SECP256R1())
    csca = (
        x509.CertificateBuilder()
        .subject_name(_name("VRS test CSCA", country))
        .issuer_name(_name("VRS test CSCA", country))
        .public_key(csca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(csca_key, hashes.SHA256())
    )
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if algorithm == "ES256":
        key, alg = ec.generate_private_key(ec.SECP256R1()), wire.ALG_ES256
    elif algorithm == "PS256":
        key, alg = rsa.generate_private_key(public_exponent=65537, key_size=2048), wire.ALG_PS256
    else:
        raise ValueError(f"algorithm must be ES256 or PS256, not {algorithm!r}")
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("VRS test DSC", country))
        .issuer_name(csca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if types is not None:
        oids = [x509.ObjectIdentifier(f"{EKU_ARCS[arc]}.{_TYPE_SUFFIX[t]}") for t in types]
        builder = builder.add_extension(x509.ExtendedKeyUsage(oids), critical=False)
    dsc = builder.sign(csca_key, hashes.SHA256())
    der = dsc.public_bytes(serialization.Encoding.DER)
    return TestSigner(
        key, der, csca.public_bytes(serialization.Encoding.DER), wire.kid_of(der), alg
    )


def sample_vaccination(
    *, dose: int = 2, series: int = 2, date: str = "2021-06-01", uvci: str | None = None
) -> dict[str, Any]:
    """A schema-1.3.0 vaccination DCC with Japanese codes (DOMAIN.md)."""
    return {
        "ver": "1.3.0",
        "nam": {"fn": "山田", "gn": "花子", "fnt": "YAMADA", "gnt": "HANAKO"},
        "dob": "1980-04-01",
        "v": [
            {
                "tg": "840539006",
                "vp": "1119349007",
                "mp": "EU/1/20/1528",
                "ma": "ORG-100030215",
                "dn": dose,
                "sd": series,
                "dt": date,
                "co": "JP",
                "is": "Ministry of Health, Labour and Welfare",
                "ci": uvci or "URN:UVCI:01:JP:VRS/0000000001#X",
            }
        ],
    }


def sign_cose(
    signer: TestSigner,
    dcc: Mapping[str, Any],
    *,
    issued_at: datetime,
    expires: datetime | None,
    issuer: str = "JP",
) -> bytes:
    """A COSE_Sign1 (tag 18, alg and kid protected) over the CWT of ``dcc``."""
    claims: dict[int, Any] = {
        wire.CWT_ISS: issuer,
        wire.CWT_IAT: int(issued_at.timestamp()),
        wire.CWT_HCERT: {wire.HCERT_EU_DCC: dict(dcc)},
    }
    if expires is not None:
        claims[wire.CWT_EXP] = int(expires.timestamp())
    protected = {wire.HEADER_ALG: signer.alg, wire.HEADER_KID: signer.kid}
    payload = cbor2.dumps(claims)
    to_sign = wire.sig_structure(wire.protected_bytes(protected), payload)
    return wire.encode_sign1(protected, {}, payload, signer.sign(to_sign))


def sign_hc1(
    signer: TestSigner,
    dcc: Mapping[str, Any],
    *,
    issued_at: datetime,
    expires: datetime | None,
    issuer: str = "JP",
) -> str:
    """The ``HC1:`` text of :func:`sign_cose`."""
    cose = sign_cose(signer, dcc, issued_at=issued_at, expires=expires, issuer=issuer)
    return wire.hc1_encode(cose)


def sample_value_sets() -> dict[str, Any]:
    """Value sets (EU JSON shape) holding the codes of the vaccines used in Japan."""

    def value_set(set_id: str, codes: Iterable[str]) -> dict[str, Any]:
        values = {
            code: {"display": code, "lang": "en", "active": True, "version": "", "system": ""}
            for code in codes
        }
        return {"valueSetId": set_id, "valueSetDate": "2023-01-01", "valueSetValues": values}

    return {
        "disease-agent-targeted": value_set("disease-agent-targeted", ["840539006"]),
        "sct-vaccines-covid-19": value_set(
            "sct-vaccines-covid-19", ["1119349007", "29061000087103", "1162643001"]
        ),
        "vaccines-covid-19-names": value_set(
            "vaccines-covid-19-names",
            ["EU/1/20/1528", "EU/1/20/1507", "EU/1/21/1529", "EU/1/21/1618", "EU/1/20/1525"],
        ),
        "vaccines-covid-19-auth-holders": value_set(
            "vaccines-covid-19-auth-holders",
            ["ORG-100030215", "ORG-100031184", "ORG-100001699", "ORG-100032020", "ORG-100001417"],
        ),
        "country-2-codes": value_set("country-2-codes", ["JP", "DE", "FR", "US"]),
        "covid-19-lab-test-type": value_set("covid-19-lab-test-type", ["LP6464-4", "LP217198-3"]),
        "covid-19-lab-result": value_set("covid-19-lab-result", ["260415000", "260373001"]),
        "covid-19-lab-test-manufacturer-and-name": value_set(
            "covid-19-lab-test-manufacturer-and-name", ["1232"]
        ),
    }


def _rule(identifier: str, country: str, description: str, logic: Any) -> dict[str, Any]:
    return {
        "Identifier": identifier,
        "Type": "Acceptance",
        "Country": country,
        "Version": "1.0.0",
        "SchemaVersion": "1.3.0",
        "Engine": "CERTLOGIC",
        "EngineVersion": "1.2.2",
        "CertificateType": "Vaccination",
        "Description": [{"lang": "en", "desc": description}],
        "ValidFrom": "2021-01-01T00:00:00Z",
        "ValidTo": "2030-01-01T00:00:00Z",
        "AffectedFields": ["v.0.dn", "v.0.sd", "v.0.dt", "v.0.mp"],
        "Logic": logic,
    }


def sample_rules() -> dict[str, list[dict[str, Any]]]:
    """Rules for ``venue`` and ``border:DE``: series complete, 14 days after the last dose, an
    EU-authorised product; at the border, also no more than 270 days after a completed primary
    series. Boosters are encoded n/n, so "dn >= sd" covers them."""
    complete = {">=": [{"var": "payload.v.0.dn"}, {"var": "payload.v.0.sd"}]}
    after_14_days = {
        "not-before": [
            {"plusTime": [{"var": "external.validationClock"}, 0, "day"]},
            {"plusTime": [{"var": "payload.v.0.dt"}, 14, "day"]},
        ]
    }
    within_270_days = {
        "not-after": [
            {"plusTime": [{"var": "external.validationClock"}, 0, "day"]},
            {"plusTime": [{"var": "payload.v.0.dt"}, 270, "day"]},
        ]
    }
    authorised = {
        "in": [{"var": "payload.v.0.mp"}, {"var": "external.valueSets.vaccines-covid-19-names"}]
    }
    venue = [
        _rule("VR-JP-0001", "JP", "The vaccination series must be complete.", complete),
        _rule("VR-JP-0002", "JP", "14 days must have passed since the last dose.", after_14_days),
    ]
    border = [
        _rule("VR-DE-0001", "DE", "The vaccination series must be complete.", complete),
        _rule("VR-DE-0002", "DE", "14 days must have passed since the last dose.", after_14_days),
        _rule("VR-DE-0003", "DE", "The product must be authorised.", authorised),
        _rule("VR-DE-0004", "DE", "The last dose is at most 270 days old.", within_270_days),
    ]
    return {"venue": venue, "border:DE": border}


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_trust_bundle(
    bundle_key: ec.EllipticCurvePrivateKey,
    certificates: Iterable[bytes],
    *,
    now: datetime,
    valid_for: timedelta = timedelta(days=7),
    sequence: int = 1,
    value_sets: Mapping[str, Any] | None = None,
    rules: Mapping[str, Any] | None = None,
    revocations: Mapping[str, list[bytes]] | None = None,
) -> bytes:
    """A signed trust bundle (interfaces.md, version 1) over the given DSCs."""
    dscs = []
    for der in certificates:
        certificate = x509.load_der_x509_certificate(der)
        dscs.append(
            {
                "kid": base64.b64encode(wire.kid_of(der)).decode(),
                "certificate": base64.b64encode(der).decode(),
                "country": "JP",
                "not_before": _rfc3339(certificate.not_valid_before_utc),
                "not_after": _rfc3339(certificate.not_valid_after_utc),
                "certificate_types": ["v", "t", "r"],
            }
        )
    body = {
        "format": "vrs-trust-bundle",
        "version": 1,
        "issuer": "JP",
        "sequence": sequence,
        "issued_at": _rfc3339(now),
        "valid_until": _rfc3339(now + valid_for),
        "dscs": dscs,
        "cscas": [],
        "value_sets": dict(value_sets if value_sets is not None else sample_value_sets()),
        "rules": dict(rules if rules is not None else sample_rules()),
        "revocations": {
            kind: [base64.b64encode(h).decode() for h in (revocations or {}).get(kind, [])]
            for kind in ("SIGNATURE", "UCI", "COUNTRYCODEUCI")
        },
    }
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    public = bundle_key.public_key()
    protected = {wire.HEADER_ALG: wire.ALG_ES256, wire.HEADER_KID: bundle_kid(public)}
    to_sign = wire.sig_structure(wire.protected_bytes(protected), payload)
    der_signature = bundle_key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
    return wire.encode_sign1(protected, {}, payload, wire.es256_der_to_raw(der_signature))
