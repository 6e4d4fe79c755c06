"""CSCA and DSC X.509: P-256, the DCC extended key usages, the chain and the validity rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs.testing import EphemeralKey
from keys import (
    ALL_CERTIFICATE_TYPES,
    CertificateError,
    CertificateInfo,
    CertificateType,
    certificate_types,
    create_csca,
    create_dsc,
    kid_of,
)

NOW = datetime(2026, 4, 1, 12, 30, 15, 999_000, tzinfo=UTC)
CSCA_KEY = EphemeralKey("csca")
CSCA = create_csca(CSCA_KEY, not_before=NOW)


def _dsc(types: frozenset[CertificateType] = ALL_CERTIFICATE_TYPES, **kwargs: object) -> bytes:
    options: dict[str, object] = {"not_before": NOW, "validity": timedelta(days=730)}
    options.update(kwargs)
    return create_dsc(EphemeralKey("dsc"), csca_key=CSCA_KEY, csca_der=CSCA, types=types, **options)  # type: ignore[arg-type]


def test_the_csca_is_a_self_signed_p256_ca() -> None:
    certificate = x509.load_der_x509_certificate(CSCA)
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert certificate.issuer == certificate.subject
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    certificate.verify_directly_issued_by(certificate)
    # X.509 keeps whole seconds: rounded down, so the CSCA is valid from the moment asked.
    assert certificate.not_valid_before_utc == NOW.replace(microsecond=0)
    assert certificate.subject.rfc4514_string().endswith("C=JP")


def test_a_dsc_is_issued_by_the_csca_and_carries_the_dcc_usage_oids() -> None:
    der = _dsc()
    certificate = x509.load_der_x509_certificate(der)
    certificate.verify_directly_issued_by(x509.load_der_x509_certificate(CSCA))
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {oid.dotted_string for oid in usage} == {
        "1.3.6.1.4.1.1847.2021.1.1",
        "1.3.6.1.4.1.1847.2021.1.2",
        "1.3.6.1.4.1.1847.2021.1.3",
    }
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert certificate_types(der) == ALL_CERTIFICATE_TYPES
    info = CertificateInfo.from_der(der)
    assert info.kid == kid_of(der)
    assert info.not_after - info.not_before == timedelta(days=730)


def test_a_dsc_for_vaccinations_only_says_so() -> None:
    der = _dsc(frozenset({CertificateType.VACCINATION}))
    assert certificate_types(der) == {CertificateType.VACCINATION}


def _certificate_with_usage(usages: list[x509.ObjectIdentifier] | None) -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "other")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
    )
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    ("usages", "expected"),
    [
        (None, ALL_CERTIFICATE_TYPES),
        ([ExtendedKeyUsageOID.SERVER_AUTH], ALL_CERTIFICATE_TYPES),
        ([x509.ObjectIdentifier("1.3.6.1.4.1.0.1847.2021.1.1")], {CertificateType.TEST}),
        (
            [
                x509.ObjectIdentifier("1.3.6.1.4.1.0.1847.2021.1.2"),
                x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.3"),
            ],
            {CertificateType.VACCINATION, CertificateType.RECOVERY},
        ),
    ],
)
def test_other_issuers_usages_are_read_by_the_dcc_rule(
    usages: list[x509.ObjectIdentifier] | None, expected: frozenset[CertificateType]
) -> None:
    assert certificate_types(_certificate_with_usage(usages)) == expected


def test_a_dsc_outliving_its_csca_is_refused() -> None:
    with pytest.raises(CertificateError) as caught:
        _dsc(validity=timedelta(days=3653))
    assert caught.value.code == "DSC_OUTLIVES_CSCA"
    with pytest.raises(CertificateError) as early:
        _dsc(not_before=NOW - timedelta(days=1))
    assert early.value.code == "DSC_OUTLIVES_CSCA"


def test_the_wrong_csca_key_is_refused() -> None:
    with pytest.raises(CertificateError) as caught:
        create_dsc(
            EphemeralKey(),
            csca_key=EphemeralKey(),
            csca_der=CSCA,
            not_before=NOW,
            validity=timedelta(days=1),
        )
    assert caught.value.code == "KEY_MISMATCH"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"types": frozenset()}, "NO_CERTIFICATE_TYPES"),
        ({"types": frozenset({"v"})}, "NO_CERTIFICATE_TYPES"),
        ({"validity": timedelta(0)}, "BAD_VALIDITY"),
        ({"not_before": NOW.replace(tzinfo=None)}, "BAD_VALIDITY"),
        ({"common_name": ""}, "BAD_NAME"),
        ({"common_name": "x" * 65}, "BAD_NAME"),
    ],
)
def test_bad_dsc_requests_are_refused(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(CertificateError) as caught:
        _dsc(**kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code


@pytest.mark.parametrize("country", ["jp", "JPN", "", None])
def test_a_csca_needs_a_country_code(country: object) -> None:
    with pytest.raises(CertificateError) as caught:
        create_csca(EphemeralKey(), not_before=NOW, country=country)  # type: ignore[arg-type]
    assert caught.value.code == "BAD_COUNTRY"


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01\x00", b"garbage" * 100, "text", None])
def test_garbage_is_not_a_certificate(der: object) -> None:
    with pytest.raises(CertificateError) as caught:
        certificate_types(der)  # type: ignore[arg-type]
    assert caught.value.code == "INVALID_CERTIFICATE"


def test_a_document_signer_needs_a_parsable_certificate_of_its_own_key() -> None:
    from keys import CertificateError, DocumentSigner, TrustBundleSigner

    with pytest.raises(CertificateError) as garbage:
        DocumentSigner(EphemeralKey(), b"\x30\x00")
    assert garbage.value.code == "INVALID_CERTIFICATE"

    class P384Key(EphemeralKey):
        def public_key(self) -> ec.EllipticCurvePublicKey:
            return ec.generate_private_key(ec.SECP384R1()).public_key()

    with pytest.raises(CertificateError) as curve:
        TrustBundleSigner(P384Key())
    assert curve.value.code == "KEY_MISMATCH"


@pytest.mark.parametrize("key", [None, b"key", "PEM"])
def test_a_kid_needs_a_public_key(key: object) -> None:
    from keys import bundle_kid

    with pytest.raises(CertificateError) as caught:
        bundle_kid(key)  # type: ignore[arg-type]
    assert caught.value.code == "KEY_MISMATCH"
