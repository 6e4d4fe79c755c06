"""The two outside opinions every certificate we issue must satisfy: pycose and our minimal
decoder (tests/certs/minimal_decoder.py)."""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import CoseMessage, Sign1Message

from certs import IssuedCertificate
from tests.certs import minimal_decoder


def pycose_verify(cose: bytes, certificate_der: bytes) -> dict[Any, Any]:
    """Decode and verify with pycose; return the CWT claims."""
    message = CoseMessage.decode(cose)
    assert isinstance(message, Sign1Message)
    public = x509.load_der_x509_certificate(certificate_der).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    numbers = public.public_numbers()
    message.key = EC2Key(crv=P256, x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))
    assert message.verify_signature(), "pycose: the signature does not verify"
    claims = cbor2.loads(message.payload)
    assert isinstance(claims, dict)
    return claims


def assert_certificate_is_sound(issued: IssuedCertificate, certificate_der: bytes) -> None:
    """Both decoders agree with each other and with what ``issue`` said it signed."""
    kid = hashlib.sha256(certificate_der).digest()[:8]
    decoded = minimal_decoder.decode_hc1(issued.hc1)
    minimal_decoder.verify(decoded, certificate_der)
    assert decoded.protected == {1: -7, 4: kid}
    assert decoded.hcert == issued.payload
    assert decoded.claims[6] == int(issued.issued_at.timestamp())
    assert decoded.claims[4] == int(issued.expires_at.timestamp())
    assert decoded.claims[1] == "JP"
    claims = pycose_verify(issued.cose, certificate_der)
    assert claims == decoded.claims
    assert issued.kid == kid
    assert issued.signature_hash == hashlib.sha256(decoded.signature[:32]).digest()[:16]
    assert issued.uci_hash == hashlib.sha256(issued.uvci.encode()).digest()[:16]
