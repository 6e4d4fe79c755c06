"""The exceptions of the ``keys`` package, each with a stable ``code``.

::

    KeysError                 base: every failure in ``keys`` (``code``, message)
    ├── KeyStoreError         a store cannot create, find, unlock or use a key
    ├── CertificateError      a CSCA/DSC cannot be made, or a certificate does not parse
    └── KeyRingError          the key ring on disk is missing, corrupt or cannot do what was asked
"""

from __future__ import annotations


class KeysError(Exception):
    """Base of every ``keys`` error; ``code`` is stable and safe to show or log."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class KeyStoreError(KeysError):
    """A key store failed: ``KEY_NOT_FOUND``, ``KEY_EXISTS``, ``BAD_LABEL``, ``BAD_PASSPHRASE``,
    ``PASSPHRASE_MISSING``, ``PASSPHRASE_WEAK``, ``KEY_FILE_INVALID``, ``HSM_MODULE_MISSING``,
    ``HSM_TOKEN_NOT_FOUND``, ``HSM_LOGIN_FAILED``, ``HSM_ERROR``, ``STORE_CLOSED``."""


class CertificateError(KeysError):
    """X.509 trouble: ``INVALID_CERTIFICATE``, ``KEY_MISMATCH``, ``BAD_VALIDITY``,
    ``DSC_OUTLIVES_CSCA``, ``NO_CERTIFICATE_TYPES``, ``BAD_COUNTRY``, ``BAD_NAME``."""


class KeyRingError(KeysError):
    """Key ring trouble: ``RING_MISSING``, ``RING_EXISTS``, ``RING_CORRUPT``, ``RING_LOCKED``,
    ``NO_SUCH_DSC``, ``ACTIVE_DSC``, ``CSCA_EXPIRING``, ``BAD_TIME``, ``BAD_SETTING``."""
