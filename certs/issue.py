"""``certs.issue``: the safe recipe from dose data to a signed ``HC1:`` certificate.

payload (schema 1.3.0) → CWT claims → COSE_Sign1 (ES256, KID protected) → zlib → base45 →
``HC1:``. Time is a parameter. The certificate expires after ``validity`` (one year by
default) and never after the DSC's ``notAfter``; a DSC that is not valid at ``now``, or whose
extended key usage does not allow vaccination certificates, signs nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from certs import _cose
from certs.errors import PayloadError, SigningError
from certs.payload import COUNTRY, DEFAULT_ISSUER, HolderName, Vaccination, vaccination_payload
from certs.uvci import new_uvci
from certs.wire import ALG_ES256, countrycode_uci_hash, hc1_encode, signature_hash, uci_hash
from keys import CertificateType, KeysError, Signer, certificate_types, load_certificate

#: Validity of a certificate unless the caller says otherwise.
DEFAULT_VALIDITY = timedelta(days=365)
#: The latest local date anywhere is UTC+14: a dose dated after that is in the future.
_LATEST_OFFSET = timedelta(hours=14)


@dataclass(frozen=True)
class IssuedCertificate:
    """A signed certificate and what the service stores about it (revocation hashes, KID)."""

    uvci: str
    hc1: str
    issued_at: datetime
    expires_at: datetime
    kid: bytes
    #: First 16 bytes of SHA-256 of ``r`` (EU DCC revocation, SIGNATURE list).
    signature_hash: bytes
    #: First 16 bytes of SHA-256 of the UVCI (UCI list, legacy).
    uci_hash: bytes
    #: First 16 bytes of SHA-256 of country + UVCI (COUNTRYCODEUCI list, legacy).
    countrycode_uci_hash: bytes
    #: The ``hcert`` JSON object that was signed.
    payload: dict[str, Any]
    #: The signed COSE_Sign1 bytes (before zlib and base45).
    cose: bytes


@dataclass(frozen=True)
class _DscFacts:
    not_before: datetime
    not_after: datetime
    may_sign_vaccination: bool


@functools.lru_cache(maxsize=64)
def _dsc_facts(der: bytes) -> _DscFacts:
    try:
        certificate = load_certificate(der)
        kinds = certificate_types(certificate)
    except KeysError as exc:
        raise SigningError("BAD_DSC", f"the signer's certificate: {exc.message}") from exc
    return _DscFacts(
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        may_sign_vaccination=CertificateType.VACCINATION in kinds,
    )


def _check_now(now: object) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise SigningError("BAD_TIME", "now must be an aware datetime")
    return now.astimezone(UTC)


def issue(
    name: HolderName,
    date_of_birth: date | str,
    vaccination: Vaccination,
    *,
    signer: Signer,
    now: datetime,
    validity: timedelta = DEFAULT_VALIDITY,
    issuer: str = DEFAULT_ISSUER,
    country: str = COUNTRY,
    uvci: str | None = None,
) -> IssuedCertificate:
    """Sign one vaccination certificate at ``now`` with ``signer``; return it and its hashes.

    ``uvci`` defaults to a fresh :func:`certs.new_uvci`. Raises :class:`certs.PayloadError`
    for bad dose data and :class:`certs.SigningError` when the signer cannot sign it now.
    """
    now = _check_now(now)
    if not isinstance(country, str) or len(country) != 2 or not country.isascii():
        raise SigningError("BAD_COUNTRY", "country is an ISO 3166 alpha-2 code")
    if not country.isalpha() or not country.isupper():
        raise SigningError("BAD_COUNTRY", "country is an ISO 3166 alpha-2 code")
    if not isinstance(validity, timedelta) or validity <= timedelta(0):
        raise SigningError("BAD_VALIDITY", "validity must be a positive timedelta")
    if not isinstance(vaccination, Vaccination):
        raise PayloadError("BAD_INPUT", "a Vaccination is required")
    if vaccination.date > (now + _LATEST_OFFSET).date():
        raise PayloadError("DATE_IN_FUTURE", "the vaccination date is after the issuing time")
    if getattr(signer, "algorithm", None) != "ES256":
        raise SigningError("UNSUPPORTED_ALGORITHM", "the signer must sign ES256")
    dsc = _dsc_facts(bytes(signer.certificate_der))
    if now < dsc.not_before:
        raise SigningError("DSC_NOT_YET_VALID", f"the DSC is valid from {dsc.not_before}")
    if not dsc.may_sign_vaccination:
        raise SigningError("KEY_USAGE", "the DSC may not sign vaccination certificates")
    issued_at = int(now.timestamp())
    expires_at = int(min(now + validity, dsc.not_after).timestamp())
    if expires_at <= issued_at:
        raise SigningError("DSC_EXPIRED", f"the DSC expired at {dsc.not_after}")
    if uvci is None:
        uvci = new_uvci(country=country)
    payload = vaccination_payload(name, date_of_birth, vaccination, uvci=uvci, issuer=issuer)
    claims = _cose.cwt_claims(payload, country=country, issued_at=issued_at, expires_at=expires_at)
    cose, signature = _cose.sign1(claims, signer)
    return IssuedCertificate(
        uvci=uvci,
        hc1=hc1_encode(cose),
        issued_at=datetime.fromtimestamp(issued_at, UTC),
        expires_at=datetime.fromtimestamp(expires_at, UTC),
        kid=signer.kid,
        signature_hash=signature_hash(signature, ALG_ES256),
        uci_hash=uci_hash(uvci),
        countrycode_uci_hash=countrycode_uci_hash(country, uvci),
        payload=payload,
        cose=cose,
    )
