"""Key material: CSCA and document-signer certificates, key stores, rotation, trust-bundle signing.

- :func:`kid_of` — the one definition of a document signer's KID.
- :class:`Signer` (document signer), :class:`BundleSigner` (trust-bundle signer),
  :class:`SigningKey` (a store's key handle) — every signature is ES256, raw ``r || s``.
- :func:`create_csca`, :func:`create_dsc`, :func:`certificate_types` — X.509 with the DCC
  extended-key-usage OIDs.
- :class:`KeyStore`: :class:`FileKeyStore` (encrypted PKCS#8 files) and :class:`Pkcs11KeyStore`
  (an HSM through PKCS#11).
- :class:`KeyRing` — init, rotation and listing of the DSCs, and the trust-bundle key.
- :func:`open_key_store`, :func:`ring_directory` — the store and ring a service's environment
  and data directory name.

Errors: :class:`KeysError` → :class:`KeyStoreError`, :class:`CertificateError`,
:class:`KeyRingError` (each with a stable ``code``).

The names below load their module on first use, so importing one light module (say
:mod:`keys.kid`) does not pull in the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keys.certificates import (
        ALL_CERTIFICATE_TYPES,
        DCC_KEY_USAGE_OIDS,
        LEGACY_DCC_KEY_USAGE_OIDS,
        CertificateInfo,
        CertificateType,
        certificate_types,
        create_csca,
        create_dsc,
        load_certificate,
    )
    from keys.config import file_store_directory, open_key_store, ring_directory
    from keys.errors import CertificateError, KeyRingError, KeysError, KeyStoreError
    from keys.kid import KID_LENGTH, kid_of
    from keys.pkcs11_store import Pkcs11KeyStore, find_softhsm_module
    from keys.ring import DscEntry, KeyRing, RingSettings
    from keys.signer import (
        ES256,
        BundleSigner,
        DocumentSigner,
        Signer,
        SigningKey,
        TrustBundleSigner,
        bundle_kid,
        spki_der,
    )
    from keys.stores import (
        DEVELOPMENT_PASSPHRASE,
        MIN_PASSPHRASE_LENGTH,
        PASSPHRASE_VARIABLE,
        FileKeyStore,
        KeyStore,
        passphrase_from_environment,
    )

#: Where each exported name lives.
_HOME: dict[str, str] = {
    "ALL_CERTIFICATE_TYPES": "keys.certificates",
    "DCC_KEY_USAGE_OIDS": "keys.certificates",
    "LEGACY_DCC_KEY_USAGE_OIDS": "keys.certificates",
    "CertificateInfo": "keys.certificates",
    "CertificateType": "keys.certificates",
    "certificate_types": "keys.certificates",
    "create_csca": "keys.certificates",
    "create_dsc": "keys.certificates",
    "load_certificate": "keys.certificates",
    "file_store_directory": "keys.config",
    "open_key_store": "keys.config",
    "ring_directory": "keys.config",
    "CertificateError": "keys.errors",
    "KeyRingError": "keys.errors",
    "KeysError": "keys.errors",
    "KeyStoreError": "keys.errors",
    "KID_LENGTH": "keys.kid",
    "kid_of": "keys.kid",
    "Pkcs11KeyStore": "keys.pkcs11_store",
    "find_softhsm_module": "keys.pkcs11_store",
    "DscEntry": "keys.ring",
    "KeyRing": "keys.ring",
    "RingSettings": "keys.ring",
    "ES256": "keys.signer",
    "BundleSigner": "keys.signer",
    "DocumentSigner": "keys.signer",
    "Signer": "keys.signer",
    "SigningKey": "keys.signer",
    "TrustBundleSigner": "keys.signer",
    "bundle_kid": "keys.signer",
    "spki_der": "keys.signer",
    "DEVELOPMENT_PASSPHRASE": "keys.stores",
    "MIN_PASSPHRASE_LENGTH": "keys.stores",
    "PASSPHRASE_VARIABLE": "keys.stores",
    "FileKeyStore": "keys.stores",
    "KeyStore": "keys.stores",
    "passphrase_from_environment": "keys.stores",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'keys' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "ALL_CERTIFICATE_TYPES",
    "DCC_KEY_USAGE_OIDS",
    "DEVELOPMENT_PASSPHRASE",
    "ES256",
    "KID_LENGTH",
    "LEGACY_DCC_KEY_USAGE_OIDS",
    "MIN_PASSPHRASE_LENGTH",
    "PASSPHRASE_VARIABLE",
    "BundleSigner",
    "CertificateError",
    "CertificateInfo",
    "CertificateType",
    "DocumentSigner",
    "DscEntry",
    "FileKeyStore",
    "KeyRing",
    "KeyRingError",
    "KeyStore",
    "KeyStoreError",
    "KeysError",
    "Pkcs11KeyStore",
    "RingSettings",
    "Signer",
    "SigningKey",
    "TrustBundleSigner",
    "bundle_kid",
    "certificate_types",
    "create_csca",
    "create_dsc",
    "file_store_directory",
    "find_softhsm_module",
    "kid_of",
    "load_certificate",
    "open_key_store",
    "passphrase_from_environment",
    "ring_directory",
    "spki_der",
]
