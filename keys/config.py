"""Choosing and opening the key store from the service's environment (no import-time reads).

=======================  ==================================================================
variable                 meaning
=======================  ==================================================================
``VRS_KEY_STORE``        ``file`` (default) or ``pkcs11``
``VRS_KEY_PASSPHRASE``   file store: the key files' passphrase (production: 20+ characters)
``VRS_PKCS11_MODULE``    pkcs11: path of the token's PKCS#11 module (development: SoftHSM2's
                         module when unset)
``VRS_PKCS11_TOKEN``     pkcs11: the token label
``VRS_PKCS11_PIN``       pkcs11: the token's user PIN
=======================  ==================================================================

The key ring lives in ``<data dir>/keys`` and the file store's keys in
``<data dir>/keys/private`` (:func:`ring_directory`, :func:`file_store_directory`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from keys.errors import KeyStoreError
from keys.pkcs11_store import Pkcs11KeyStore, find_softhsm_module
from keys.stores import FileKeyStore, KeyStore, passphrase_from_environment

STORE_VARIABLE = "VRS_KEY_STORE"
MODULE_VARIABLE = "VRS_PKCS11_MODULE"
TOKEN_VARIABLE = "VRS_PKCS11_TOKEN"  # noqa: S105 - a variable name, not a secret
PIN_VARIABLE = "VRS_PKCS11_PIN"


def ring_directory(data_dir: Path | str) -> Path:
    """Where the key ring's files live under the service's data directory."""
    return Path(data_dir) / "keys"


def file_store_directory(data_dir: Path | str) -> Path:
    """Where the file store keeps the encrypted private keys."""
    return ring_directory(data_dir) / "private"


def open_key_store(
    environ: Mapping[str, str], *, data_dir: Path | str, development: bool
) -> KeyStore:
    """The key store the environment names (see the module docstring)."""
    kind = environ.get(STORE_VARIABLE, "file").strip().lower() or "file"
    if kind == "file":
        passphrase = passphrase_from_environment(environ, development=development)
        return FileKeyStore(file_store_directory(data_dir), passphrase)
    if kind != "pkcs11":
        raise KeyStoreError("BAD_STORE_KIND", f"{STORE_VARIABLE} is 'file' or 'pkcs11'")
    module = environ.get(MODULE_VARIABLE, "")
    if not module and development:
        found = find_softhsm_module()
        module = str(found) if found else ""
    if not module:
        raise KeyStoreError(
            "HSM_MODULE_MISSING", f"set {MODULE_VARIABLE} to the token's PKCS#11 module"
        )
    token = environ.get(TOKEN_VARIABLE, "")
    pin = environ.get(PIN_VARIABLE, "")
    if not token or not pin:
        raise KeyStoreError(
            "HSM_LOGIN_FAILED", f"set {TOKEN_VARIABLE} and {PIN_VARIABLE} for the PKCS#11 store"
        )
    return Pkcs11KeyStore(module, token, pin)
