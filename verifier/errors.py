"""The verifier's exceptions. Each carries a stable ``code`` (see docs/verifier.md).

``verify()`` itself never raises for bad certificates: it returns INVALID or ERROR results.
These exceptions come from the parts a caller uses directly::

    VerifierError
    ├── DecodeError            input of a type decode() does not accept
    ├── TrustBundleError       a trust bundle that fails its signature, format or pin
    ├── SyncError              downloading the trust bundle failed
    └── CertLogicError         a business rule could not be evaluated (verifier.certlogic)
"""

from __future__ import annotations

__all__ = ["DecodeError", "SyncError", "TrustBundleError", "VerifierError"]


class VerifierError(Exception):
    """Base of every verifier error; ``code`` is stable, ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class DecodeError(VerifierError):
    """decode() was given something that is not text, bytes, a path or an image."""


class TrustBundleError(VerifierError):
    """A trust bundle that cannot be used: bad signature, wrong key, malformed content."""


class SyncError(VerifierError):
    """The trust bundle could not be downloaded (network, HTTP status, bad body)."""
