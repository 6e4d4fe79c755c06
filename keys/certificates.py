"""X.509 for the DCC trust chain: a country signing CA (CSCA) and its document signers (DSC).

Both are P-256 certificates. A DSC carries the DCC extended-key-usage OIDs of the certificate
types it may sign (test, vaccination, recovery); a DSC without any DCC usage OID is, by the
specification, allowed to sign every type (:func:`certificate_types`).

The certificates are signed through :class:`keys.SigningKey` — so a CSCA key that lives in an
HSM signs its DSCs there: the to-be-signed part is built with ``cryptography`` and the
signature is attached here (:func:`_attach_signature`), never by exporting the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from keys.errors import CertificateError
from keys.kid import kid_of
from keys.signer import SigningKey, spki_der


class CertificateType(StrEnum):
    """The DCC certificate types, by their payload key."""

    TEST = "t"
    VACCINATION = "v"
    RECOVERY = "r"


#: The DCC extended-key-usage OIDs a DSC carries for the types it may sign.
DCC_KEY_USAGE_OIDS: dict[CertificateType, x509.ObjectIdentifier] = {
    CertificateType.TEST: x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.1"),
    CertificateType.VACCINATION: x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.2"),
    CertificateType.RECOVERY: x509.ObjectIdentifier("1.3.6.1.4.1.1847.2021.1.3"),
}
#: The older arc some countries' DSCs still carry; accepted when reading, never written.
LEGACY_DCC_KEY_USAGE_OIDS: dict[CertificateType, x509.ObjectIdentifier] = {
    CertificateType.TEST: x509.ObjectIdentifier("1.3.6.1.4.1.0.1847.2021.1.1"),
    CertificateType.VACCINATION: x509.ObjectIdentifier("1.3.6.1.4.1.0.1847.2021.1.2"),
    CertificateType.RECOVERY: x509.ObjectIdentifier("1.3.6.1.4.1.0.1847.2021.1.3"),
}
_TYPE_OF_OID = {
    oid: kind
    for table in (DCC_KEY_USAGE_OIDS, LEGACY_DCC_KEY_USAGE_OIDS)
    for kind, oid in table.items()
}
ALL_CERTIFICATE_TYPES = frozenset(CertificateType)

#: ``AlgorithmIdentifier`` of ecdsa-with-SHA256 (RFC 5758: no parameters), DER.
_ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_MAX_NAME = 64  # X.520 ub-common-name


@dataclass(frozen=True)
class CertificateInfo:
    """What the key ring and the trust bundle need to know about a certificate."""

    der: bytes
    kid: bytes
    subject: str
    issuer: str
    serial_number: int
    not_before: datetime
    not_after: datetime
    certificate_types: frozenset[CertificateType]

    @classmethod
    def from_der(cls, der: bytes) -> CertificateInfo:
        certificate = load_certificate(der)
        return cls(
            der=bytes(der),
            kid=kid_of(bytes(der)),
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            serial_number=certificate.serial_number,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            certificate_types=certificate_types(certificate),
        )


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse a DER certificate, or raise ``CertificateError("INVALID_CERTIFICATE")``."""
    if not isinstance(der, bytes | bytearray | memoryview) or not der:
        raise CertificateError("INVALID_CERTIFICATE", "a certificate is DER bytes")
    try:
        return x509.load_der_x509_certificate(bytes(der))
    except ValueError as exc:
        raise CertificateError("INVALID_CERTIFICATE", f"does not parse: {exc}") from exc


def certificate_types(certificate: x509.Certificate | bytes) -> frozenset[CertificateType]:
    """The DCC certificate types a DSC may sign, read from its extended key usage.

    No extended-key-usage extension, or one without any DCC OID: every type (the DCC rule).
    Both the current and the legacy ``1.3.6.1.4.1.0.1847…`` arcs count.
    """
    if not isinstance(certificate, x509.Certificate):
        certificate = load_certificate(certificate)
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return ALL_CERTIFICATE_TYPES
    except ValueError as exc:
        raise CertificateError("INVALID_CERTIFICATE", f"extensions do not parse: {exc}") from exc
    found = frozenset(_TYPE_OF_OID[oid] for oid in usage if oid in _TYPE_OF_OID)
    return found or ALL_CERTIFICATE_TYPES


def _utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise CertificateError("BAD_VALIDITY", f"{what} must be an aware datetime")
    # X.509 times have whole seconds: round down so the certificate is valid from `moment`.
    return moment.astimezone(UTC).replace(microsecond=0)


def _name(country: str, organization: str, common_name: str) -> x509.Name:
    if not isinstance(country, str) or not _COUNTRY.fullmatch(country):
        raise CertificateError("BAD_COUNTRY", "country is an ISO 3166 alpha-2 code, e.g. 'JP'")
    for value in (organization, common_name):
        if not isinstance(value, str) or not value.strip() or len(value) > _MAX_NAME:
            raise CertificateError("BAD_NAME", f"names are 1..{_MAX_NAME} characters")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _attach_signature(tbs: bytes, signer: SigningKey) -> bytes:
    """``Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }``."""
    raw = signer.sign(tbs)
    signature = encode_dss_signature(
        int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    )
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + _ECDSA_WITH_SHA256 + bit_string
    return b"\x30" + _der_length(len(body)) + body


def _sign_builder(
    builder: x509.CertificateBuilder, signer: SigningKey, issuer_key: ec.EllipticCurvePublicKey
) -> bytes:
    # cryptography signs only with a key object it holds; a throwaway P-256 key yields the
    # to-be-signed bytes (which name ecdsa-with-SHA256, as the real signature will be), and
    # the real signature is made by the store's key.
    scratch = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    der = _attach_signature(scratch.tbs_certificate_bytes, signer)
    certificate = load_certificate(der)
    try:
        issuer_key.verify(
            certificate.signature,
            certificate.tbs_certificate_bytes,
            ec.ECDSA(hashes.SHA256()),
        )
    except Exception as exc:  # InvalidSignature: the store signed with another key
        raise CertificateError("KEY_MISMATCH", "the signing key does not match") from exc
    return der


def create_csca(
    key: SigningKey,
    *,
    not_before: datetime,
    validity: timedelta = timedelta(days=3652),
    country: str = "JP",
    organization: str = "VRS",
    common_name: str = "VRS Country Signing CA",
) -> bytes:
    """A self-signed CSCA certificate for ``key`` (DER): CA, path length 0, certificate signing."""
    start = _utc(not_before, "not_before")
    if validity <= timedelta(0):
        raise CertificateError("BAD_VALIDITY", "validity must be positive")
    public_key = key.public_key()
    name = _name(country, organization, common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return _sign_builder(builder, key, public_key)


def create_dsc(
    key: SigningKey,
    *,
    csca_key: SigningKey,
    csca_der: bytes,
    not_before: datetime,
    validity: timedelta,
    types: Iterable[CertificateType] = ALL_CERTIFICATE_TYPES,
    common_name: str = "VRS Document Signer",
) -> bytes:
    """A DSC for ``key`` (DER), issued by the CSCA, with the DCC usage OIDs of ``types``.

    Its validity must lie inside the CSCA's: a DSC that outlives its CSCA is refused.
    """
    csca = load_certificate(csca_der)
    csca_public = csca.public_key()
    if not isinstance(csca_public, ec.EllipticCurvePublicKey) or spki_der(csca_public) != spki_der(
        csca_key.public_key()
    ):
        raise CertificateError("KEY_MISMATCH", "csca_key is not the CSCA certificate's key")
    kinds = sorted(set(types))
    if not kinds or any(not isinstance(kind, CertificateType) for kind in kinds):
        raise CertificateError("NO_CERTIFICATE_TYPES", "a DSC signs at least one known type")
    start = _utc(not_before, "not_before")
    if validity <= timedelta(0):
        raise CertificateError("BAD_VALIDITY", "validity must be positive")
    end = start + validity
    if start < csca.not_valid_before_utc or end > csca.not_valid_after_utc:
        raise CertificateError(
            "DSC_OUTLIVES_CSCA",
            f"the DSC ({start:%Y-%m-%d}..{end:%Y-%m-%d}) must lie inside the CSCA's validity "
            f"({csca.not_valid_before_utc:%Y-%m-%d}..{csca.not_valid_after_utc:%Y-%m-%d})",
        )
    country = csca.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value
    organization = csca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(str(country), str(organization), common_name))
        .issuer_name(csca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([DCC_KEY_USAGE_OIDS[kind] for kind in kinds]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(csca_public), critical=False
        )
    )
    return _sign_builder(builder, csca_key, csca_public)
