"""The key identifier (KID) of a document signer certificate, defined once for the whole project."""

from __future__ import annotations

import hashlib

#: Length of a KID in bytes (EU DCC: the first 8 bytes of the SHA-256 of the DSC's DER encoding).
KID_LENGTH = 8


def kid_of(der: bytes) -> bytes:
    """The KID of a DSC: the first 8 bytes of the SHA-256 of its DER encoding."""
    if not isinstance(der, bytes | bytearray | memoryview) or not der:
        raise ValueError("kid_of needs the certificate's DER bytes")
    return hashlib.sha256(der).digest()[:KID_LENGTH]
