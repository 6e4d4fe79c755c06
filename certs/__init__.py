"""Certificate issuer: EU-DCC-style payloads, CWT, COSE_Sign1, base45 and ``HC1:`` QR codes.

- :func:`issue` — the safe recipe: dose data + a :class:`keys.Signer` + ``now`` → an
  :class:`IssuedCertificate` (UVCI, ``HC1:`` text, times, KID, revocation hashes, payload).
- Inputs: :class:`HolderName` (registered and ICAO 9303 names), :class:`Vaccination`.
- Names: :func:`icao_name` (passport spelling → ICAO 9303), :func:`hepburn_from_kana`.
- :func:`new_uvci`, :func:`is_valid_uvci` — ``URN:UVCI:01:JP:…#c`` with Luhn mod N.
- :func:`qr_png`, :func:`qr_svg` (alphanumeric, level Q); :func:`certificate_pdf` (A4, JA/EN).
- :mod:`certs.trustbundle` — the signed trust bundle v1 (:func:`bundle_payload`,
  :func:`sign_bundle`; ``docs/trust-bundle.md``).
- :mod:`certs.wire` — the wire-format helpers shared with the verifier.
- :mod:`certs.testing` — a throwaway signer and certificate for tests.

Errors: :class:`CertsError` → :class:`PayloadError`, :class:`TransliterationError`,
:class:`UvciError`, :class:`SigningError`, :class:`RenderError`, :class:`TrustBundleError`
(each with a stable ``code``); the wire format's own is :class:`certs.wire.WireError`.

The names below load their module on first use, so importing one light module (say
:mod:`certs.wire`) does not pull in the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from certs.errors import (
        CertsError,
        PayloadError,
        RenderError,
        SigningError,
        TransliterationError,
        TrustBundleError,
        UvciError,
    )
    from certs.issue import DEFAULT_VALIDITY, IssuedCertificate, issue
    from certs.names import hepburn_from_kana, icao_name
    from certs.payload import (
        COVID_19,
        DEFAULT_ISSUER,
        SCHEMA_VERSION,
        HolderName,
        Vaccination,
        vaccination_payload,
    )
    from certs.pdf import certificate_pdf
    from certs.qr import qr_matrix, qr_png, qr_svg
    from certs.trustbundle import BundleDsc, Revocations, bundle_payload, sign_bundle
    from certs.uvci import is_valid_uvci, luhn_mod_n, new_uvci

#: Where each exported name lives.
_HOME: dict[str, str] = {
    "CertsError": "certs.errors",
    "PayloadError": "certs.errors",
    "RenderError": "certs.errors",
    "SigningError": "certs.errors",
    "TransliterationError": "certs.errors",
    "TrustBundleError": "certs.errors",
    "UvciError": "certs.errors",
    "DEFAULT_VALIDITY": "certs.issue",
    "IssuedCertificate": "certs.issue",
    "issue": "certs.issue",
    "hepburn_from_kana": "certs.names",
    "icao_name": "certs.names",
    "COVID_19": "certs.payload",
    "DEFAULT_ISSUER": "certs.payload",
    "SCHEMA_VERSION": "certs.payload",
    "HolderName": "certs.payload",
    "Vaccination": "certs.payload",
    "vaccination_payload": "certs.payload",
    "certificate_pdf": "certs.pdf",
    "qr_matrix": "certs.qr",
    "qr_png": "certs.qr",
    "qr_svg": "certs.qr",
    "BundleDsc": "certs.trustbundle",
    "Revocations": "certs.trustbundle",
    "bundle_payload": "certs.trustbundle",
    "sign_bundle": "certs.trustbundle",
    "is_valid_uvci": "certs.uvci",
    "luhn_mod_n": "certs.uvci",
    "new_uvci": "certs.uvci",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'certs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "COVID_19",
    "DEFAULT_ISSUER",
    "DEFAULT_VALIDITY",
    "SCHEMA_VERSION",
    "BundleDsc",
    "CertsError",
    "HolderName",
    "IssuedCertificate",
    "PayloadError",
    "RenderError",
    "Revocations",
    "SigningError",
    "TransliterationError",
    "TrustBundleError",
    "UvciError",
    "Vaccination",
    "bundle_payload",
    "certificate_pdf",
    "hepburn_from_kana",
    "icao_name",
    "is_valid_uvci",
    "issue",
    "luhn_mod_n",
    "new_uvci",
    "qr_matrix",
    "qr_png",
    "qr_svg",
    "sign_bundle",
    "vaccination_payload",
]
