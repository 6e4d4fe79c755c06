"""Raw assembly of a signed DCC: CWT claims, COSE_Sign1 (ES256, KID protected). Private.

The public recipe is :func:`certs.issue`, which checks the inputs, the time and the signer
before anything here runs; this module trusts its arguments.
"""

from __future__ import annotations

from typing import Any, Protocol

import cbor2

from certs.errors import SigningError
from certs.wire import (
    ALG_ES256,
    CWT_EXP,
    CWT_HCERT,
    CWT_IAT,
    CWT_ISS,
    HCERT_EU_DCC,
    HEADER_ALG,
    HEADER_KID,
    encode_sign1,
    protected_bytes,
    sig_structure,
)

ES256_SIGNATURE_LENGTH = 64


class KidSigner(Protocol):
    """What a COSE_Sign1 needs of a signer: its KID and ES256 (both ``keys.Signer`` and
    ``keys.BundleSigner`` are one)."""

    @property
    def kid(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


def cwt_claims(hcert: dict[str, Any], *, country: str, issued_at: int, expires_at: int) -> bytes:
    """The CWT claims map ``{1: iss, 4: exp, 6: iat, -260: {1: hcert}}`` as CBOR."""
    return cbor2.dumps(
        {
            CWT_ISS: country,
            CWT_EXP: expires_at,
            CWT_IAT: issued_at,
            CWT_HCERT: {HCERT_EU_DCC: hcert},
        }
    )


def sign1(payload: bytes, signer: KidSigner) -> tuple[bytes, bytes]:
    """A COSE_Sign1 (tag 18) over ``payload``, protected header ``{1: -7, 4: kid}``, and its
    raw signature."""
    header = {HEADER_ALG: ALG_ES256, HEADER_KID: signer.kid}
    signature = signer.sign(sig_structure(protected_bytes(header), payload))
    if not isinstance(signature, bytes) or len(signature) != ES256_SIGNATURE_LENGTH:
        raise SigningError("BAD_SIGNATURE", "the signer did not return a 64-byte ES256 signature")
    return encode_sign1(header, {}, payload, signature), signature
