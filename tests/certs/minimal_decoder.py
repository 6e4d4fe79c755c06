"""An independently written, minimal HC1 decoder: the second opinion on what ``certs`` issues.

It shares no code with ``certs`` (nor with ``cbor2``): its own base45, its own CBOR reader
(definite lengths only, which is all a DCC uses), its own Sig_structure, and ``cryptography``
for the ECDSA check. It is written from RFC 9285, RFC 8949 and RFC 9052 directly.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def base45_decode(text: str) -> bytes:
    values = [ALPHABET.index(ch) for ch in text]
    out = bytearray()
    for start in range(0, len(values), 3):
        chunk = values[start : start + 3]
        if len(chunk) == 3:
            n = chunk[0] + chunk[1] * 45 + chunk[2] * 45 * 45
            assert n <= 0xFFFF
            out += n.to_bytes(2, "big")
        else:
            assert len(chunk) == 2
            n = chunk[0] + chunk[1] * 45
            assert n <= 0xFF
            out.append(n)
    return bytes(out)


@dataclass
class Tag:
    number: int
    value: Any


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        chunk = self.data[self.pos : self.pos + count]
        assert len(chunk) == count, "truncated CBOR"
        self.pos += count
        return chunk

    def argument(self, info: int) -> int:
        if info < 24:
            return info
        width = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        return int.from_bytes(self.take(width), "big")

    def item(self) -> Any:
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if major == 7:
            if info in (20, 21):
                return info == 21
            if info == 22:
                return None
            raise AssertionError(f"simple/float {info} not expected in a DCC")
        value = self.argument(info)
        if major == 0:
            return value
        if major == 1:
            return -1 - value
        if major == 2:
            return self.take(value)
        if major == 3:
            return self.take(value).decode("utf-8")
        if major == 4:
            return [self.item() for _ in range(value)]
        if major == 5:
            result = {}
            for _ in range(value):
                key = self.item()
                result[key] = self.item()
            return result
        return Tag(value, self.item())


def cbor_decode(data: bytes) -> Any:
    reader = Reader(data)
    value = reader.item()
    assert reader.pos == len(data), "trailing bytes after the CBOR item"
    return value


def _head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    if length < 256:
        return bytes([major << 5 | 24, length])
    if length < 65536:
        return bytes([major << 5 | 25]) + length.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + length.to_bytes(4, "big")


def to_be_signed(protected: bytes, payload: bytes) -> bytes:
    """``["Signature1", protected, h'', payload]`` encoded by hand."""
    context = b"Signature1"
    return (
        b"\x84"
        + _head(3, len(context))
        + context
        + _head(2, len(protected))
        + protected
        + b"\x40"
        + _head(2, len(payload))
        + payload
    )


@dataclass
class Decoded:
    protected: dict[int, Any]
    claims: dict[int, Any]
    hcert: dict[str, Any]
    signature: bytes
    signed_bytes: bytes


def decode_hc1(text: str) -> Decoded:
    assert text.startswith("HC1:")
    cose = zlib.decompress(base45_decode(text[4:]))
    top = cbor_decode(cose)
    assert isinstance(top, Tag) and top.number == 18, "COSE_Sign1 tag 18"
    protected_bytes, unprotected, payload, signature = top.value
    assert unprotected == {}
    protected = cbor_decode(protected_bytes)
    claims = cbor_decode(payload)
    return Decoded(
        protected=protected,
        claims=claims,
        hcert=claims[-260][1],
        signature=signature,
        signed_bytes=to_be_signed(protected_bytes, payload),
    )


def verify(decoded: Decoded, certificate_der: bytes) -> None:
    """Raise unless the signature verifies with the DSC's key (ES256, raw r || s)."""
    key = x509.load_der_x509_certificate(certificate_der).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    r = int.from_bytes(decoded.signature[:32], "big")
    s = int.from_bytes(decoded.signature[32:], "big")
    key.verify(encode_dss_signature(r, s), decoded.signed_bytes, ec.ECDSA(hashes.SHA256()))
