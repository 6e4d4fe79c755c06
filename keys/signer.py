"""What signs: a store's key handle (:class:`SigningKey`), a document signer (:class:`Signer`)
and the trust-bundle signer (:class:`BundleSigner`).

Every signature here is ES256 (ECDSA on P-256 with SHA-256) returned in the raw COSE form
``r || s`` (64 bytes). Nothing in this module, nor any store, returns private key material.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keys.errors import CertificateError
from keys.kid import KID_LENGTH, kid_of

#: The one signature algorithm VRS signs with (COSE name).
ES256 = "ES256"
#: Length of an ES256 signature in its raw COSE form.
ES256_SIGNATURE_LENGTH = 64


@runtime_checkable
class SigningKey(Protocol):
    """A P-256 private key held by a key store. It signs; it never hands out its private half."""

    @property
    def label(self) -> str:
        """The key's name in its store."""
        ...

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half."""
        ...

    def sign(self, data: bytes) -> bytes:
        """ES256 over ``data`` (hashed here with SHA-256): raw ``r || s``, 64 bytes."""
        ...


@runtime_checkable
class Signer(Protocol):
    """A document signer: what ``certs.issue`` needs to sign a certificate."""

    @property
    def kid(self) -> bytes:
        """First 8 bytes of SHA-256 of :attr:`certificate_der` (:func:`keys.kid_of`)."""
        ...

    @property
    def certificate_der(self) -> bytes:
        """The DSC, DER-encoded."""
        ...

    @property
    def algorithm(self) -> str:
        """``"ES256"``."""
        ...

    def sign(self, data: bytes) -> bytes:
        """The raw COSE signature of ``data`` (``r || s``, 64 bytes for ES256)."""
        ...


@runtime_checkable
class BundleSigner(Protocol):
    """The trust-bundle signer: a key whose public half verifiers pin (no certificate)."""

    @property
    def kid(self) -> bytes:
        """:func:`bundle_kid` of the public key."""
        ...

    @property
    def public_key_pem(self) -> bytes:
        """The public key as a PEM SubjectPublicKeyInfo, the thing verifiers pin."""
        ...

    @property
    def algorithm(self) -> str:
        """``"ES256"``."""
        ...

    def sign(self, data: bytes) -> bytes:
        """The raw COSE signature of ``data`` (``r || s``)."""
        ...


def spki_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of a public key."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise CertificateError("KEY_MISMATCH", "an EC public key is required")
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def bundle_kid(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The trust bundle's KID: the first 8 bytes of SHA-256 of the key's SPKI DER."""
    return hashlib.sha256(spki_der(public_key)).digest()[:KID_LENGTH]


def _check_p256(public_key: object) -> ec.EllipticCurvePublicKey:
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise CertificateError("KEY_MISMATCH", "ES256 needs a P-256 (secp256r1) key")
    return public_key


class DocumentSigner:
    """A :class:`Signer` made of a store's key and the DSC certifying it.

    Refuses a certificate whose public key is not the key's own, so a mixed-up
    configuration fails at start-up rather than issuing certificates nobody can verify.
    """

    __slots__ = ("_certificate", "_der", "_key", "_kid")

    def __init__(self, key: SigningKey, certificate_der: bytes) -> None:
        try:
            certificate = x509.load_der_x509_certificate(bytes(certificate_der))
        except (ValueError, TypeError) as exc:
            raise CertificateError("INVALID_CERTIFICATE", f"DSC does not parse: {exc}") from exc
        cert_key = _check_p256(certificate.public_key())
        if spki_der(cert_key) != spki_der(_check_p256(key.public_key())):
            raise CertificateError(
                "KEY_MISMATCH", f"the certificate is not for the key {key.label!r}"
            )
        self._key = key
        self._der = bytes(certificate_der)
        self._certificate = certificate
        self._kid = kid_of(self._der)

    @property
    def kid(self) -> bytes:
        return self._kid

    @property
    def certificate_der(self) -> bytes:
        return self._der

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed DSC."""
        return self._certificate

    @property
    def algorithm(self) -> str:
        return ES256

    @property
    def label(self) -> str:
        """The key's label in its store."""
        return self._key.label

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"DocumentSigner(label={self._key.label!r}, kid={self._kid.hex()})"


class TrustBundleSigner:
    """A :class:`BundleSigner` made of a store's key."""

    __slots__ = ("_key", "_kid", "_pem")

    def __init__(self, key: SigningKey) -> None:
        public_key = _check_p256(key.public_key())
        self._key = key
        self._kid = bundle_kid(public_key)
        self._pem = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def kid(self) -> bytes:
        return self._kid

    @property
    def public_key_pem(self) -> bytes:
        return self._pem

    @property
    def algorithm(self) -> str:
        return ES256

    @property
    def label(self) -> str:
        """The key's label in its store."""
        return self._key.label

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"TrustBundleSigner(label={self._key.label!r}, kid={self._kid.hex()})"
