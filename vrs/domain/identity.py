"""Identity assertions residents sign in with, behind one small interface.

:class:`IdentityVerifier` turns an assertion (the request body's fields) and the challenge the
service issued into a :class:`VerifiedIdentity`, or raises :class:`IdentityRejected` with a
stable code. :class:`MyNumberCardVerifier` implements it for a card modelled on the My Number
card; an OpenID Connect provider (an ID token whose ``nonce`` is the challenge) would be
another implementation with the same shape.

The card (our model of it):

- **holder data**: canonical JSON (UTF-8, sorted keys, no whitespace) with ``format``
  (``vrs-card-holder``), ``version`` 1, ``serial``, ``my_number``, ``name``, ``birth_date``
  (``YYYY-MM-DD``), ``not_before`` / ``not_after`` (RFC 3339 UTC) and ``public_key`` (the
  card key's SubjectPublicKeyInfo DER, base64url) — signed by the **card issuer** (ECDSA P-256,
  SHA-256, DER signature);
- a **card key pair** (P-256) whose private half never leaves the card: it signs
  :func:`challenge_message` of the service's one-time challenge.

The service is configured with the card issuer's X.509 certificate, and trusts only its key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from vrs.domain.mynumber import is_valid_my_number

HOLDER_FORMAT = "vrs-card-holder"
HOLDER_VERSION = 1
#: Domain separation: a card signature over a challenge can mean nothing else.
CHALLENGE_CONTEXT = b"VRS resident sign-in challenge v1\x00"
#: Largest holder-data document accepted (a real one is about 400 bytes).
MAX_HOLDER_BYTES = 4096
MAX_SIGNATURE_BYTES = 160


class IdentityRejected(Exception):
    """The assertion does not prove an identity. ``code`` is stable; ``subject`` names the
    card (``card:<hash>``) once the issuer's signature over it has been verified, so failures
    can be counted against a genuine card and never against one an attacker merely named."""

    def __init__(self, code: str, message: str, subject: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subject = subject


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who the assertion proved. ``my_number`` is held only long enough to hash it."""

    my_number: str
    birth_date: date
    name: str
    #: A stable key of the credential used (the card), for rate limiting and the session.
    subject: str


class IdentityVerifier(Protocol):
    def verify(
        self, assertion: Mapping[str, str], *, challenge: bytes, now: datetime
    ) -> VerifiedIdentity:
        """Check the assertion against the challenge it answers, at ``now``."""
        ...


def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, *, limit: int, code: str) -> bytes:
    """Strict base64url (padding optional) of at most ``limit`` decoded bytes."""
    if not isinstance(text, str) or len(text) > limit * 4 // 3 + 4:
        raise IdentityRejected(code, "the field is missing or too long")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise IdentityRejected(code, "the field is not base64url") from None


def challenge_message(challenge: bytes) -> bytes:
    """The exact bytes a card signs to answer ``challenge``."""
    return CHALLENGE_CONTEXT + challenge


def card_subject(public_key_der: bytes) -> str:
    return "card:" + hashlib.sha256(public_key_der).hexdigest()


def encode_holder(holder: Mapping[str, Any]) -> bytes:
    """Canonical JSON of holder data (what the card issuer signs)."""
    return json.dumps(holder, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class CardHolder:
    serial: str
    my_number: str
    name: str
    birth_date: date
    not_before: datetime
    not_after: datetime
    public_key_der: bytes


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z") or len(value) > 40:
        raise ValueError("not an RFC 3339 UTC time")
    return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)


def parse_holder(data: bytes) -> CardHolder:
    """The holder data's fields, strictly checked (raises :class:`IdentityRejected`)."""
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not an object")
        if doc.get("format") != HOLDER_FORMAT or doc.get("version") != HOLDER_VERSION:
            raise ValueError("unknown holder-data format")
        my_number, name, serial = doc["my_number"], doc["name"], doc["serial"]
        if not isinstance(my_number, str) or not is_valid_my_number(my_number):
            raise ValueError("bad my_number")
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise ValueError("bad name")
        if not isinstance(serial, str) or not 0 < len(serial) <= 64:
            raise ValueError("bad serial")
        birth = doc["birth_date"]
        if not isinstance(birth, str) or len(birth) != 10:
            raise ValueError("bad birth_date")
        key = doc["public_key"]
        if not isinstance(key, str):
            raise ValueError("bad public_key")
        return CardHolder(
            serial=serial,
            my_number=my_number,
            name=name,
            birth_date=date.fromisoformat(birth),
            not_before=_timestamp(doc["not_before"]),
            not_after=_timestamp(doc["not_after"]),
            public_key_der=b64u_decode(key, limit=200, code="CARD_MALFORMED"),
        )
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        raise IdentityRejected("CARD_MALFORMED", "the card's holder data is malformed") from exc
    except RecursionError as exc:
        raise IdentityRejected("CARD_MALFORMED", "the card's holder data is malformed") from exc


def _verify_es256(key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


class MyNumberCardVerifier:
    """:class:`IdentityVerifier` for our model of the My Number card.

    The assertion's fields: ``holder`` (base64url of the holder data), ``issuer_signature``
    (base64url DER ECDSA by the card issuer over those bytes) and ``signature`` (base64url DER
    ECDSA by the card key over :func:`challenge_message`).
    """

    def __init__(self, issuer_certificate: x509.Certificate) -> None:
        key = issuer_certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("the card issuer's certificate must hold an EC key")
        self.issuer_certificate = issuer_certificate
        self._issuer_key = key

    @classmethod
    def from_pem(cls, pem: bytes) -> MyNumberCardVerifier:
        return cls(x509.load_pem_x509_certificate(pem))

    def verify(
        self, assertion: Mapping[str, str], *, challenge: bytes, now: datetime
    ) -> VerifiedIdentity:
        holder_bytes = b64u_decode(
            assertion.get("holder", ""), limit=MAX_HOLDER_BYTES, code="CARD_MALFORMED"
        )
        issuer_signature = b64u_decode(
            assertion.get("issuer_signature", ""), limit=MAX_SIGNATURE_BYTES, code="CARD_MALFORMED"
        )
        if not _verify_es256(self._issuer_key, issuer_signature, holder_bytes):
            raise IdentityRejected(
                "CARD_NOT_TRUSTED", "the card's holder data is not signed by the card issuer"
            )
        holder = parse_holder(holder_bytes)
        subject = card_subject(holder.public_key_der)
        if not holder.not_before <= now <= holder.not_after:
            raise IdentityRejected("CARD_EXPIRED", "the card is not valid now", subject)
        try:
            card_key = serialization.load_der_public_key(holder.public_key_der)
        except (ValueError, TypeError):
            raise IdentityRejected(
                "CARD_MALFORMED", "the card's public key cannot be read", subject
            ) from None
        if not isinstance(card_key, ec.EllipticCurvePublicKey):
            raise IdentityRejected("CARD_MALFORMED", "the card key is not an EC key", subject)
        signature = b64u_decode(
            assertion.get("signature", ""), limit=MAX_SIGNATURE_BYTES, code="BAD_SIGNATURE"
        )
        if not _verify_es256(card_key, signature, challenge_message(challenge)):
            raise IdentityRejected(
                "BAD_SIGNATURE", "the challenge was not signed by this card's key", subject
            )
        return VerifiedIdentity(
            my_number=holder.my_number,
            birth_date=holder.birth_date,
            name=holder.name,
            subject=subject,
        )
