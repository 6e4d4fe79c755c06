"""Unique vaccination certificate identifiers (UVCI), eHealth Network guidelines, Annex 2.

``URN:UVCI:01:JP:<issuing entity>/<opaque unique string>#<checksum>``: version ``01``, the
country, and (schema option 3) an issuer part and an opaque random part. The checksum is the
Luhn mod N algorithm over the whole identifier before ``#`` — ``URN:UVCI:`` included — with the
38 code points ``A–Z 0–9 / :`` in that order (the checksum character is one of them). Checked
against the member states' published test certificates in the tests.
"""

from __future__ import annotations

import base64
import re
import secrets

from certs.errors import UvciError

PREFIX = "URN:UVCI:"
VERSION = "01"
#: The code points of the checksum, in order: their index is the value Luhn mod N works on.
CODE_POINTS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:"
_VALUE = {ch: index for index, ch in enumerate(CODE_POINTS)}
_N = len(CODE_POINTS)
#: Longest UVCI we make (the guidelines' limit is 72 characters, the schema's ``ci`` 80).
MAX_LENGTH = 72
#: The opaque part's alphabet: upper-case letters and digits without 0/O and 1/I, so a
#: UVCI read aloud at a municipality window is not ambiguous.
OPAQUE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
OPAQUE_LENGTH = 20  # 100 bits of randomness
# base32 of random bytes, its 32 letters mapped one to one onto OPAQUE_ALPHABET: one urandom
# call instead of twenty `secrets.choice` calls.
_FROM_BASE32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", OPAQUE_ALPHABET.encode())
_PART = re.compile(r"^[A-Z0-9]{1,20}$")
_UVCI = re.compile(r"^URN:UVCI:01:[A-Z]{2}:[A-Z0-9/:]{1,60}#[A-Z0-9/:]$")


def luhn_mod_n(text: str) -> str:
    """The Luhn mod N check character of ``text`` over :data:`CODE_POINTS`."""
    if not isinstance(text, str):
        raise UvciError("BAD_UVCI", "a UVCI is text")
    factor = 2
    total = 0
    try:
        for ch in reversed(text):
            addend = factor * _VALUE[ch]
            factor = 1 if factor == 2 else 2
            total += addend // _N + addend % _N
    except KeyError as exc:
        raise UvciError("BAD_UVCI", f"{exc.args[0]!r} is not a UVCI character") from exc
    return CODE_POINTS[(_N - total % _N) % _N]


def new_uvci(issuer: str = "VRS", *, country: str = "JP", opaque: str | None = None) -> str:
    """A fresh UVCI ``URN:UVCI:01:<country>:<issuer>/<opaque>#<check>``.

    ``opaque`` defaults to 20 random characters of :data:`OPAQUE_ALPHABET` (``secrets``).
    """
    if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
        raise UvciError("BAD_UVCI_PART", "country is an ISO 3166 alpha-2 code, e.g. 'JP'")
    if not isinstance(issuer, str) or not _PART.fullmatch(issuer):
        raise UvciError("BAD_UVCI_PART", "issuer is 1-20 of A-Z, 0-9")
    if opaque is None:
        random32 = base64.b32encode(secrets.token_bytes(15))[:OPAQUE_LENGTH]
        opaque = random32.translate(_FROM_BASE32).decode("ascii")
    elif not isinstance(opaque, str) or not re.fullmatch(r"[A-Z0-9]{1,40}", opaque):
        raise UvciError("BAD_UVCI_PART", "the opaque part is 1-40 of A-Z, 0-9")
    body = f"{PREFIX}{VERSION}:{country}:{issuer}/{opaque}"
    return f"{body}#{luhn_mod_n(body)}"


def is_valid_uvci(uvci: object) -> bool:
    """Whether ``uvci`` is a version-01 UVCI in our form whose checksum is right.

    For our own identifiers only: other issuers' checksums are unreliable in real data, and a
    verifier must not reject a certificate for one.
    """
    if not isinstance(uvci, str) or len(uvci) > MAX_LENGTH or not _UVCI.fullmatch(uvci):
        return False
    body, _, check = uvci.rpartition("#")
    return luhn_mod_n(body) == check
