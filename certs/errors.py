"""The exceptions of the issuing side of ``certs``, each with a stable ``code``.

::

    CertsError                base: every issuing failure (``code``, message); a ValueError
    ├── PayloadError          the dose data cannot make a schema-valid DCC payload
    ├── TransliterationError  a name cannot be put into ICAO 9303 form / Hepburn
    ├── UvciError             a UVCI is malformed or its parts are not allowed
    ├── SigningError          the signer cannot sign this certificate (validity, key usage, key)
    ├── RenderError           the QR code or the PDF cannot be made
    └── TrustBundleError      the trust bundle's parts are not valid

The wire format's own errors are :class:`certs.wire.WireError`.
"""

from __future__ import annotations


class CertsError(ValueError):
    """Base of the issuing errors; ``code`` is stable and safe to show or log."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class PayloadError(CertsError):
    """The dose data cannot make a valid payload (``BAD_DOSE_NUMBER``, ``BAD_DATE``, …)."""


class TransliterationError(CertsError):
    """A name cannot be put into ICAO 9303 form (``NAME_NOT_LATIN``, ``NAME_TOO_LONG``, …)."""


class UvciError(CertsError):
    """A UVCI or one of its parts is malformed (``BAD_UVCI``, ``BAD_UVCI_PART``)."""


class SigningError(CertsError):
    """The signer cannot sign this (``DSC_NOT_YET_VALID``, ``DSC_EXPIRED``, ``KEY_USAGE``, …)."""


class RenderError(CertsError):
    """The QR code or the PDF cannot be made (``QR_TOO_LONG``, ``BAD_QR_TEXT``, …)."""


class TrustBundleError(CertsError):
    """The trust bundle's parts are invalid (``BAD_SEQUENCE``, ``BAD_DSC``, …)."""
