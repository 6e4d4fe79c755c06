"""Wire-format helpers shared by the issuer and the verifier.

Everything here is a fact of a public specification, with no keys and no policy:

* base45 (RFC 9285), table-driven;
* zlib with a hard cap on the inflated size, so a compression bomb is refused, not inflated;
* a structural pre-scan of CBOR that refuses deep or huge input before it reaches ``cbor2``;
* COSE_Sign1 (RFC 9052) encoding and parsing, tagged 18, tagged 61 around 18, or untagged, and the
  ``Signature1`` structure that is signed;
* the CWT claim keys of an EU DCC, the ``HC1:`` prefix, and the revocation hashes of the EU DCC
  revocation specification (SIGNATURE, UCI, COUNTRYCODEUCI);
* ES256 signature conversion between COSE's raw ``r || s`` and the DER that ``cryptography`` uses.

Errors are :class:`WireError` with a stable ``code``; nothing here raises another type on bad input.
"""

from __future__ import annotations

import hashlib
import sys
import zlib
from array import array
from dataclasses import dataclass
from typing import Any, Literal

import cbor2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from keys.kid import kid_of

__all__ = [
    "ALG_ES256",
    "ALG_PS256",
    "CWT_EXP",
    "CWT_HCERT",
    "CWT_IAT",
    "CWT_ISS",
    "HC1_PREFIX",
    "HCERT_EU_DCC",
    "HEADER_ALG",
    "HEADER_KID",
    "MAX_CBOR_DEPTH",
    "MAX_CBOR_ITEMS",
    "MAX_INFLATED",
    "Sign1",
    "WireError",
    "b45decode",
    "b45encode",
    "cbor_check",
    "cbor_loads",
    "countrycode_uci_hash",
    "encode_sign1",
    "es256_der_to_raw",
    "es256_raw_to_der",
    "hc1_encode",
    "hc1_strip",
    "header_alg",
    "header_kid",
    "kid_of",
    "parse_sign1",
    "protected_bytes",
    "sig_structure",
    "signature_hash",
    "uci_hash",
    "zlib_compress",
    "zlib_decompress",
]

HC1_PREFIX = "HC1:"

#: COSE algorithm identifiers (RFC 9053): ECDSA w/ SHA-256 on P-256, RSASSA-PSS w/ SHA-256.
ALG_ES256 = -7
ALG_PS256 = -37
#: COSE header labels.
HEADER_ALG = 1
HEADER_KID = 4
#: CWT claim keys (RFC 8392) and the EU DCC ``hcert`` claim with its one member, the DCC.
CWT_ISS = 1
CWT_EXP = 4
CWT_IAT = 6
CWT_HCERT = -260
HCERT_EU_DCC = 1

#: Default caps. A DCC payload is a few hundred bytes and a QR code holds at most about 3 kB of
#: compressed data, so 64 KiB inflated and a nesting depth of 16 leave a wide margin.
MAX_INFLATED = 64 * 1024
MAX_CBOR_DEPTH = 16
MAX_CBOR_ITEMS = 10_000
MAX_CBOR_BYTES = 1024 * 1024


class WireError(ValueError):
    """Bad wire-format input; ``code`` is stable and safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------------------
# base45 (RFC 9285)

_B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
#: ASCII → base45 value (0-44); every other byte maps to ``_NOT_B45``.
_NOT_B45 = b"\xff"
_B45_VALUES = bytes(_B45.index(chr(i)) if chr(i) in _B45 else 0xFF for i in range(256))
_B45_WEIGHTS = np.array([1, 45, 2025], dtype=np.uint32)
_pairs: list[str] = []
_LITTLE = sys.byteorder == "little"


def _pair_table() -> list[str]:
    """The three-character encoding of each of the 65,536 byte pairs (built on first use)."""
    if not _pairs:
        chars = _B45
        table = [chars[n % 45] + chars[(n // 45) % 45] + chars[n // 2025] for n in range(65536)]
        # One slice assignment, atomic under the GIL: a thread issuing at the same time sees
        # either no table or all of it, never a half-built one (an IndexError, a 500).
        _pairs[:] = table
    return _pairs


def b45encode(data: bytes) -> str:
    """Encode bytes as base45: each pair of bytes as three characters, a last odd byte as two."""
    pairs = _pair_table()
    even = len(data) & ~1
    words = array("H", bytes(data[:even]))
    if _LITTLE:
        words.byteswap()
    text = "".join(map(pairs.__getitem__, words))
    if even != len(data):
        last = data[-1]
        text += _B45[last % 45] + _B45[last // 45]
    return text


def b45decode(text: str) -> bytes:
    """Decode base45; a character outside the alphabet or a group out of range is refused."""
    if not isinstance(text, str):
        raise WireError("BASE45_INVALID", "base45 input must be text")
    if len(text) % 3 == 1:
        raise WireError("BASE45_INVALID", "base45 length leaves a single dangling character")
    try:
        values = text.encode("ascii").translate(_B45_VALUES)
    except UnicodeEncodeError:
        raise WireError("BASE45_INVALID", "base45 text has a character outside ASCII") from None
    if _NOT_B45 in values:
        raise WireError("BASE45_INVALID", "base45 text has a character outside the alphabet")
    full = len(values) - len(values) % 3
    # Vectorised: each group of three values c, d, e is the 16-bit number c + 45 d + 2025 e.
    groups = np.frombuffer(values, dtype=np.uint8, count=full).reshape(-1, 3).astype(np.uint32)
    numbers = groups @ _B45_WEIGHTS
    if numbers.size and int(numbers.max()) > 0xFFFF:
        raise WireError("BASE45_INVALID", "a base45 group is larger than 65535")
    out = numbers.astype(">u2").tobytes()
    if full != len(values):
        byte = values[-2] + 45 * values[-1]
        if byte > 0xFF:
            raise WireError("BASE45_INVALID", "base45 final pair is not a byte")
        out += bytes((byte,))
    return out


# ---------------------------------------------------------------------------------------------
# zlib


def zlib_compress(data: bytes) -> bytes:
    """zlib at the highest level (the DCC specification's recommendation)."""
    return zlib.compress(data, 9)


def zlib_decompress(data: bytes, max_output: int = MAX_INFLATED) -> bytes:
    """Inflate a complete zlib stream, refusing to produce more than ``max_output`` bytes."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, max_output + 1)
    except zlib.error as exc:
        raise WireError("ZLIB_INVALID", f"not a valid zlib stream ({exc})") from None
    if len(out) > max_output or inflater.unconsumed_tail:
        raise WireError("COMPRESSION_BOMB", f"inflates to more than {max_output} bytes")
    if not inflater.eof:
        raise WireError("ZLIB_TRUNCATED", "the zlib stream ends before its end marker")
    if inflater.unused_data:
        raise WireError("ZLIB_INVALID", "bytes follow the end of the zlib stream")
    return out


# ---------------------------------------------------------------------------------------------
# CBOR pre-scan

_INDEFINITE = -1
_INDEFINITE_STRING = -2


def _head(data: bytes, pos: int) -> tuple[int, int, int, int]:
    """Read one item head at ``pos``: (major type, additional info, argument, next position)."""
    if pos >= len(data):
        raise WireError("CBOR_TRUNCATED", "CBOR ends in the middle of an item")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, info, pos
    if info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise WireError("CBOR_TRUNCATED", "CBOR ends in the middle of an item head")
        return major, info, int.from_bytes(data[pos : pos + size], "big"), pos + size
    if info == 31 and major in (2, 3, 4, 5, 7):
        return major, info, _INDEFINITE, pos
    raise WireError("CBOR_MALFORMED", f"reserved CBOR additional information {info}")


def cbor_check(
    data: bytes,
    *,
    max_depth: int = MAX_CBOR_DEPTH,
    max_items: int = MAX_CBOR_ITEMS,
    max_bytes: int = MAX_CBOR_BYTES,
) -> None:
    """Walk one CBOR item without building it: refuse it if deep, huge, truncated or trailed.

    The walk is iterative (no recursion), so hostile nesting cannot exhaust the stack, and it reads
    lengths without allocating them, so a declared 4 GiB string costs nothing.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise WireError("CBOR_MALFORMED", "CBOR input must be bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise WireError("CBOR_TOO_LARGE", f"CBOR larger than {max_bytes} bytes")
    # Each frame is the count of items still expected in an open container (a map counts keys
    # and values), or a marker for an indefinite container / chunked string awaiting its break.
    stack: list[int] = [1]
    string_major: list[int] = [0]
    pos = items = 0
    while stack:
        if stack[-1] == 0:
            stack.pop()
            string_major.pop()
            continue
        major, info, arg, pos = _head(data, pos)
        if major == 7 and info == 31:
            if stack[-1] >= 0:
                raise WireError("CBOR_MALFORMED", "a CBOR break outside an indefinite item")
            stack.pop()
            string_major.pop()
            continue
        if stack[-1] == _INDEFINITE_STRING and (major != string_major[-1] or arg == _INDEFINITE):
            raise WireError("CBOR_MALFORMED", "a chunk of an indefinite string has the wrong type")
        if stack[-1] > 0:
            stack[-1] -= 1
        items += 1
        if items > max_items:
            raise WireError("CBOR_TOO_LARGE", f"CBOR holds more than {max_items} items")
        if major in (2, 3):
            if arg == _INDEFINITE:
                stack.append(_INDEFINITE_STRING)
                string_major.append(major)
            else:
                if pos + arg > len(data):
                    raise WireError("CBOR_TRUNCATED", "a CBOR string runs past the end")
                pos += arg
        elif major in (4, 5):
            count = arg if arg == _INDEFINITE else arg * (2 if major == 5 else 1)
            if count == 0:
                continue
            if count > 0 and count > max_items:
                raise WireError("CBOR_TOO_LARGE", f"CBOR container declares {arg} items")
            stack.append(count)
            string_major.append(0)
        elif major == 6:
            stack.append(1)
            string_major.append(0)
        else:
            continue
        if len(stack) - 1 > max_depth:
            raise WireError("CBOR_TOO_DEEP", f"CBOR nested more than {max_depth} levels")
    if pos != len(data):
        raise WireError("CBOR_TRAILING", f"{len(data) - pos} bytes follow the CBOR item")


def cbor_loads(
    data: bytes,
    *,
    max_depth: int = MAX_CBOR_DEPTH,
    max_items: int = MAX_CBOR_ITEMS,
    max_bytes: int = MAX_CBOR_BYTES,
) -> Any:
    """Pre-scan ``data`` with :func:`cbor_check`, then decode it with ``cbor2``."""
    cbor_check(data, max_depth=max_depth, max_items=max_items, max_bytes=max_bytes)
    try:
        return cbor2.loads(bytes(data))
    except Exception as exc:  # cbor2 raises several types (CBORDecodeError, ValueError, …)
        raise WireError("CBOR_MALFORMED", f"CBOR does not decode ({type(exc).__name__})") from None


# ---------------------------------------------------------------------------------------------
# COSE_Sign1

Tagging = Literal["18", "61+18", "untagged"]


@dataclass(frozen=True, slots=True)
class Sign1:
    """A parsed COSE_Sign1: the serialized protected header is kept, as it is what was signed."""

    protected: bytes
    protected_header: dict[Any, Any]
    unprotected: dict[Any, Any]
    payload: bytes
    signature: bytes
    tagging: Tagging = "18"


def encode_sign1(
    protected_header: dict[Any, Any],
    unprotected: dict[Any, Any],
    payload: bytes,
    signature: bytes,
) -> bytes:
    """Serialize a COSE_Sign1 tagged 18 (the protected header as its own CBOR byte string)."""
    protected = protected_bytes(protected_header)
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))


def protected_bytes(protected_header: dict[Any, Any]) -> bytes:
    """The serialized protected header exactly as :func:`encode_sign1` writes it."""
    return cbor2.dumps(protected_header) if protected_header else b""


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The ``Signature1`` structure (RFC 9052 §4.4): the bytes a COSE_Sign1 signature covers."""
    return cbor2.dumps(["Signature1", protected, external_aad, payload])


def parse_sign1(data: bytes, *, max_depth: int = MAX_CBOR_DEPTH) -> Sign1:
    """Parse a COSE_Sign1 that is tagged 18, tagged 61 (CWT) around 18, or untagged."""
    item = cbor_loads(data, max_depth=max_depth)
    tagging: Tagging = "untagged"
    if isinstance(item, cbor2.CBORTag) and item.tag == 61:
        item = item.value
        if not (isinstance(item, cbor2.CBORTag) and item.tag == 18):
            raise WireError("COSE_TAG", "CWT tag 61 must wrap a COSE_Sign1 tagged 18")
        tagging = "61+18"
        item = item.value
    elif isinstance(item, cbor2.CBORTag):
        if item.tag != 18:
            raise WireError("COSE_TAG", f"CBOR tag {item.tag} is not COSE_Sign1 (18)")
        tagging = "18"
        item = item.value
    if not isinstance(item, list) or len(item) != 4:
        raise WireError("COSE_STRUCTURE", "a COSE_Sign1 is an array of four items")
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes):
        raise WireError("COSE_STRUCTURE", "the protected header must be a byte string")
    if not isinstance(unprotected, dict):
        raise WireError("COSE_STRUCTURE", "the unprotected header must be a map")
    if payload is None:
        raise WireError("COSE_STRUCTURE", "detached payloads are not accepted")
    if not isinstance(payload, bytes):
        raise WireError("COSE_STRUCTURE", "the payload must be a byte string")
    if not isinstance(signature, bytes):
        raise WireError("COSE_STRUCTURE", "the signature must be a byte string")
    header: Any = {}
    if protected:
        header = cbor_loads(protected, max_depth=4)
        if not isinstance(header, dict):
            raise WireError("COSE_HEADER", "the protected header must encode a map")
    return Sign1(protected, header, unprotected, payload, signature, tagging)


def _header_value(sign1: Sign1, label: int) -> Any:
    if label in sign1.protected_header:
        return sign1.protected_header[label]
    return sign1.unprotected.get(label)


def header_kid(sign1: Sign1) -> bytes | None:
    """The KID from the protected header, else from the unprotected one; None when absent."""
    kid = _header_value(sign1, HEADER_KID)
    if kid is None:
        return None
    if not isinstance(kid, bytes):
        raise WireError("COSE_HEADER", "the KID header must be a byte string")
    return kid


def header_alg(sign1: Sign1) -> int | None:
    """The COSE algorithm from the protected header, else the unprotected one; None when absent."""
    alg = _header_value(sign1, HEADER_ALG)
    if alg is None:
        return None
    if not isinstance(alg, int) or isinstance(alg, bool):
        raise WireError("COSE_HEADER", "the alg header must be an integer")
    return alg


# ---------------------------------------------------------------------------------------------
# HC1


def hc1_encode(cose: bytes) -> str:
    """The QR text of a signed COSE_Sign1: ``HC1:`` + base45(zlib(cose))."""
    return HC1_PREFIX + b45encode(zlib_compress(cose))


def hc1_strip(text: str) -> str:
    """The base45 part of an ``HC1:`` string; any other context prefix is refused."""
    if not isinstance(text, str) or not text.startswith(HC1_PREFIX):
        raise WireError("PREFIX_INVALID", f"the text does not start with {HC1_PREFIX!r}")
    return text[len(HC1_PREFIX) :]


# ---------------------------------------------------------------------------------------------
# revocation hashes (EU DCC revocation: the first 128 bits of a SHA-256)


def _sha16(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:16]


def signature_hash(signature: bytes, alg: int = ALG_ES256) -> bytes:
    """SIGNATURE hash: of ``r`` (the first half) for ECDSA signatures, of the whole for RSA."""
    if alg == ALG_ES256:
        if len(signature) != 64:
            raise WireError("SIGNATURE_FORMAT", "an ES256 signature is 64 bytes (r || s)")
        return _sha16(signature[:32])
    return _sha16(signature)


def uci_hash(uvci: str) -> bytes:
    """UCI hash: of the UVCI's UTF-8 text."""
    return _sha16(uvci.encode())


def countrycode_uci_hash(country: str, uvci: str) -> bytes:
    """COUNTRYCODEUCI hash: of the issuing country code followed by the UVCI."""
    return _sha16((country + uvci).encode())


# ---------------------------------------------------------------------------------------------
# ES256 signature forms


def es256_raw_to_der(signature: bytes) -> bytes:
    """COSE's ``r || s`` (64 bytes) as the DER SEQUENCE that ``cryptography`` verifies."""
    if len(signature) != 64:
        raise WireError("SIGNATURE_FORMAT", "an ES256 signature is 64 bytes (r || s)")
    return encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )


def es256_der_to_raw(der: bytes) -> bytes:
    """A DER ECDSA signature from ``cryptography`` as COSE's fixed-width ``r || s``."""
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        raise WireError("SIGNATURE_FORMAT", "not a DER ECDSA signature") from None
    if r.bit_length() > 256 or s.bit_length() > 256:
        raise WireError("SIGNATURE_FORMAT", "not a P-256 signature")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
