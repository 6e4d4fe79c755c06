"""Development cards: a card issuer for development and test, card files, and the client side.

A real deployment trusts the national card issuer's certificate (``VRS_CARD_ISSUER_CERT``).
For development, :func:`dev_issuer` makes a throwaway issuer under the data directory on
first use (refused in production) and :func:`make_card` issues cards from it
(``vrs dev make-card``). A card file is JSON::

    {"format": "vrs-dev-card", "version": 1, "holder": <base64url holder data>,
     "issuer_signature": <base64url>, "card_private_key": <PKCS#8 PEM>}

:meth:`DevCard.answer` plays the card: it signs a challenge and returns the body of
``POST /v1/auth/card``. It holds a private key in a file, so it is for development and tests
only; a real card never lets its key out.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vrs.domain.identity import (
    HOLDER_FORMAT,
    HOLDER_VERSION,
    IdentityRejected,
    b64u_decode,
    b64u_encode,
    challenge_message,
    encode_holder,
)
from vrs.domain.mynumber import is_valid_my_number

CARD_FILE_FORMAT = "vrs-dev-card"
ISSUER_DIR = "dev-card-issuer"
ISSUER_CERT = "issuer.pem"
ISSUER_KEY = "issuer.key.pem"
CARD_VALIDITY = timedelta(days=10 * 365)


class DevCardError(ValueError):
    """A development card cannot be made or read (stable ``code``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DevIssuer:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def issuer_certificate_path(data_dir: Path) -> Path:
    return data_dir / ISSUER_DIR / ISSUER_CERT


def dev_issuer(data_dir: Path, *, production: bool, now: datetime) -> DevIssuer:
    """The development card issuer under ``data_dir``, made on first use.

    Production refuses: there the card issuer is a national authority, not this service.
    """
    if production:
        raise DevCardError(
            "DEVELOPMENT_ONLY", "development cards are refused when VRS_ENV=production"
        )
    folder = data_dir / ISSUER_DIR
    cert_path, key_path = folder / ISSUER_CERT, folder / ISSUER_KEY
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise DevCardError("BAD_ISSUER", f"{key_path} does not hold an EC key")
        return DevIssuer(x509.load_pem_x509_certificate(cert_path.read_bytes()), key)
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "VRS development"),
            x509.NameAttribute(NameOID.COMMON_NAME, "VRS development card issuer"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=20 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_path, key_pem)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return DevIssuer(certificate, key)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DevCard:
    holder: bytes
    issuer_signature: bytes
    private_key: ec.EllipticCurvePrivateKey

    def answer(self, challenge: str) -> dict[str, str]:
        """The body of ``POST /v1/auth/card`` answering ``challenge`` (as the service sent it)."""
        raw = b64u_decode(challenge, limit=64, code="BAD_CHALLENGE")
        signature = self.private_key.sign(challenge_message(raw), ec.ECDSA(hashes.SHA256()))
        return {
            "challenge": challenge,
            "holder": b64u_encode(self.holder),
            "issuer_signature": b64u_encode(self.issuer_signature),
            "signature": b64u_encode(signature),
        }

    def to_json(self) -> str:
        key_pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return json.dumps(
            {
                "format": CARD_FILE_FORMAT,
                "version": 1,
                "holder": b64u_encode(self.holder),
                "issuer_signature": b64u_encode(self.issuer_signature),
                "card_private_key": key_pem.decode("ascii"),
            },
            indent=2,
        )

    def save(self, path: Path) -> None:
        _write_private(path, self.to_json().encode())

    @classmethod
    def load(cls, path: Path) -> DevCard:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != CARD_FILE_FORMAT:
                raise ValueError("not a development card file")
            key = serialization.load_pem_private_key(
                doc["card_private_key"].encode("ascii"), password=None
            )
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("the card key is not an EC key")
            return cls(
                holder=b64u_decode(doc["holder"], limit=4096, code="BAD_CARD"),
                issuer_signature=b64u_decode(doc["issuer_signature"], limit=160, code="BAD_CARD"),
                private_key=key,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IdentityRejected) as exc:
            raise DevCardError("BAD_CARD_FILE", f"{path}: {exc}") from None


def make_card(
    issuer: DevIssuer,
    *,
    my_number: str,
    name: str,
    birth_date: date,
    now: datetime,
    validity: timedelta = CARD_VALIDITY,
) -> DevCard:
    """A card for this holder, signed by ``issuer``, with a fresh card key."""
    if not is_valid_my_number(my_number):
        raise DevCardError("BAD_MY_NUMBER", "the My Number is not 12 digits with a valid check")
    name = name.strip()
    if not 0 < len(name) <= 200:
        raise DevCardError("BAD_NAME", "the name must be 1 to 200 characters")
    card_key = ec.generate_private_key(ec.SECP256R1())
    public_der = card_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    holder = encode_holder(
        {
            "format": HOLDER_FORMAT,
            "version": HOLDER_VERSION,
            "serial": secrets.token_hex(8),
            "my_number": my_number,
            "name": name,
            "birth_date": birth_date.isoformat(),
            "not_before": _rfc3339(now - timedelta(minutes=5)),
            "not_after": _rfc3339(now + validity),
            "public_key": b64u_encode(public_der),
        }
    )
    signature = issuer.private_key.sign(holder, ec.ECDSA(hashes.SHA256()))
    return DevCard(holder=holder, issuer_signature=signature, private_key=card_key)
