"""Test helpers for users of ``certs`` (and of the verifier): a throwaway signer and certificate.

Never for production: the keys live in memory only and are made fresh on every call.

    signer = make_test_signer(now=datetime(2026, 1, 1, tzinfo=UTC))
    cert = make_certificate(signer=signer, now=...)   # an IssuedCertificate
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from certs.issue import IssuedCertificate, issue
from certs.payload import HolderName, Vaccination
from certs.wire import es256_der_to_raw
from keys import (
    ALL_CERTIFICATE_TYPES,
    CertificateType,
    DocumentSigner,
    Signer,
    create_csca,
    create_dsc,
)

#: The instant test signers and certificates default to.
TEST_NOW = datetime(2026, 1, 15, 3, 0, tzinfo=UTC)


class EphemeralKey:
    """An in-memory P-256 :class:`keys.SigningKey` (tests only)."""

    def __init__(self, label: str = "test") -> None:
        self._label = label
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def label(self) -> str:
        return self._label

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return es256_der_to_raw(self._key.sign(data, ec.ECDSA(hashes.SHA256())))


@dataclass(frozen=True)
class ThrowawaySigner:
    """A document signer with its CSCA, both made in memory."""

    signer: DocumentSigner
    csca_der: bytes
    csca_key: EphemeralKey

    @property
    def kid(self) -> bytes:
        return self.signer.kid

    @property
    def certificate_der(self) -> bytes:
        return self.signer.certificate_der

    @property
    def algorithm(self) -> str:
        return self.signer.algorithm

    def sign(self, data: bytes) -> bytes:
        return self.signer.sign(data)


def make_test_signer(
    *,
    now: datetime = TEST_NOW,
    validity: timedelta = timedelta(days=730),
    types: frozenset[CertificateType] = ALL_CERTIFICATE_TYPES,
) -> ThrowawaySigner:
    """A CSCA and a DSC valid from ``now`` for ``validity``, allowed to sign ``types``."""
    csca_key = EphemeralKey("test-csca")
    csca_der = create_csca(csca_key, not_before=now, validity=validity + timedelta(days=1))
    dsc_key = EphemeralKey("test-dsc")
    dsc_der = create_dsc(
        dsc_key,
        csca_key=csca_key,
        csca_der=csca_der,
        not_before=now,
        validity=validity,
        types=types,
    )
    return ThrowawaySigner(DocumentSigner(dsc_key, dsc_der), csca_der, csca_key)


def sample_name() -> HolderName:
    """山田 太郎 / YAMADA TARO."""
    return HolderName("山田", "太郎", "YAMADA", "TARO")


def sample_vaccination(dose_number: int = 2, when: date = date(2025, 12, 20)) -> Vaccination:
    """A Comirnaty dose (primary series of 2)."""
    return Vaccination(
        product="EU/1/20/1528",
        manufacturer="ORG-100030215",
        prophylaxis="1119349007",
        dose_number=dose_number,
        series_length=2,
        date=when,
    )


def make_certificate(
    *,
    signer: Signer | None = None,
    now: datetime = TEST_NOW,
    name: HolderName | None = None,
    date_of_birth: date | str = date(1980, 4, 1),
    vaccination: Vaccination | None = None,
    validity: timedelta = timedelta(days=365),
) -> IssuedCertificate:
    """A signed certificate for the sample holder (a fresh test signer unless one is given)."""
    return issue(
        name or sample_name(),
        date_of_birth,
        vaccination or sample_vaccination(),
        signer=signer or make_test_signer(now=now),
        now=now,
        validity=validity,
    )
