"""Trust material: document signers by KID, value sets, business rules and revocations.

A :class:`TrustStore` comes from a signed trust bundle (:func:`load_trust_bundle`, the format in
interfaces.md, checked against a pinned key) or from a plain list of document signer
certificates (:func:`trust_from_certificates`, e.g. for the EU test data). Everything expensive —
parsing certificates and their extensions, loading public keys, validating rules — happens here
once, so that :func:`verifier.verify` stays cheap and does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID

from certs import wire
from verifier.certlogic import (
    CertLogicError,
    Compiled,
    compile_expression,
    parse_datetime,
    validate,
)
from verifier.errors import TrustBundleError

__all__ = [
    "BUNDLE_FORMAT",
    "MAX_BUNDLE_BYTES",
    "Rule",
    "TrustStore",
    "TrustedSigner",
    "bundle_kid",
    "load_pinned_key",
    "load_trust_bundle",
    "trust_from_certificates",
]

BUNDLE_FORMAT = "vrs-trust-bundle"
MAX_BUNDLE_BYTES = 32 * 1024 * 1024

# Extended key usage OIDs of DCC document signers, per certificate type, on the current arc and
# on the older arc that early signers used; both are accepted.
_DCC_EKU = {
    "1.3.6.1.4.1.1847.2021.1.1": "t",
    "1.3.6.1.4.1.1847.2021.1.2": "v",
    "1.3.6.1.4.1.1847.2021.1.3": "r",
    "1.3.6.1.4.1.0.1847.2021.1.1": "t",
    "1.3.6.1.4.1.0.1847.2021.1.2": "v",
    "1.3.6.1.4.1.0.1847.2021.1.3": "r",
}
_ALL_TYPES = frozenset({"v", "t", "r"})
_RULE_TYPES = {"Vaccination": "v", "Test": "t", "Recovery": "r", "General": None}


@dataclass(frozen=True, slots=True)
class TrustedSigner:
    """One document signer certificate (DSC), parsed once.

    ``allowed_types`` is what its extended key usage allows (all three when it names no DCC
    usage); ``extension_error`` says why its extensions could not be read, if they could not.
    """

    kid: bytes
    der: bytes
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | None
    not_before: datetime
    not_after: datetime
    allowed_types: frozenset[str]
    extension_error: str | None = None
    country: str | None = None
    bundle_types: frozenset[str] | None = None  # the bundle's own restriction, if it gives one

    @classmethod
    def from_der(
        cls,
        der: bytes,
        *,
        kid: bytes | None = None,
        country: str | None = None,
        bundle_types: frozenset[str] | None = None,
    ) -> TrustedSigner:
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise TrustBundleError("DSC_UNPARSABLE", f"not an X.509 certificate ({exc})") from None
        public_key: Any
        try:
            public_key = certificate.public_key()
        except (ValueError, TypeError, NotImplementedError):
            public_key = None
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            public_key = None
        allowed, error = _allowed_types(certificate)
        return cls(
            kid=kid if kid is not None else wire.kid_of(der),
            der=der,
            public_key=public_key,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            allowed_types=allowed,
            extension_error=error,
            country=country,
            bundle_types=bundle_types,
        )


def _allowed_types(certificate: x509.Certificate) -> tuple[frozenset[str], str | None]:
    """Certificate types the DSC may sign, from its extended key usage; or why it is unreadable."""
    try:
        extension = certificate.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
    except x509.ExtensionNotFound:
        return _ALL_TYPES, None
    except ValueError as exc:
        return frozenset(), f"the DSC's extensions do not parse ({exc})"
    usages = extension.value
    assert isinstance(usages, x509.ExtendedKeyUsage)
    dcc = frozenset(_DCC_EKU[oid.dotted_string] for oid in usages if oid.dotted_string in _DCC_EKU)
    return (dcc or _ALL_TYPES), None


@dataclass(frozen=True, slots=True)
class Rule:
    """One business rule (EU rule JSON), parsed and validated once."""

    identifier: str
    rule_type: str  # "Acceptance" or "Invalidation"
    country: str
    version: tuple[int, ...]
    certificate_type: str | None  # "v", "t", "r", or None for General
    description: str
    valid_from: datetime
    valid_to: datetime
    logic: Any
    evaluate: Compiled = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Any) -> Rule:
        if not isinstance(data, dict):
            raise TrustBundleError("BUNDLE_RULE_INVALID", "a rule must be a JSON object")
        try:
            identifier = str(data["Identifier"])
            if data.get("Engine", "CERTLOGIC") != "CERTLOGIC":
                raise TrustBundleError("BUNDLE_RULE_INVALID", f"{identifier}: engine not CertLogic")
            issues = validate(data["Logic"])
            if issues:
                raise TrustBundleError("BUNDLE_RULE_INVALID", f"{identifier}: {issues[0].message}")
            certificate_type = _RULE_TYPES[data["CertificateType"]]
            descriptions = data.get("Description") or []
            english = [d.get("desc", "") for d in descriptions if d.get("lang") == "en"]
            fallback = [d.get("desc", "") for d in descriptions]
            return cls(
                identifier=identifier,
                rule_type=str(data.get("Type", "Acceptance")),
                country=str(data["Country"]),
                version=tuple(int(part) for part in str(data["Version"]).split(".")),
                certificate_type=certificate_type,
                description=(english or fallback or [""])[0],
                valid_from=parse_datetime(str(data["ValidFrom"])),
                valid_to=parse_datetime(str(data["ValidTo"])),
                logic=data["Logic"],
                evaluate=compile_expression(data["Logic"]),
            )
        except (KeyError, ValueError, TypeError, CertLogicError) as exc:
            raise TrustBundleError("BUNDLE_RULE_INVALID", f"malformed rule ({exc!r})") from None

    def applies(self, certificate_type: str, now: datetime) -> bool:
        type_ok = self.certificate_type is None or self.certificate_type == certificate_type
        return type_ok and self.valid_from <= now <= self.valid_to


@dataclass(frozen=True)
class TrustStore:
    """Everything :func:`verifier.verify` trusts. ``None`` for a part means "not available":
    the check that needs it then gives ERROR rather than guessing."""

    signers: Mapping[bytes, tuple[TrustedSigner, ...]]
    value_sets: Mapping[str, frozenset[str]] | None = None
    rules: Mapping[str, tuple[Rule, ...]] | None = None
    revocations: Mapping[str, frozenset[bytes]] | None = None
    issuer: str | None = None
    sequence: int | None = None
    issued_at: datetime | None = None
    valid_until: datetime | None = None
    # value sets as CertLogic's external.valueSets wants them: {id: [codes]}
    value_set_lists: Mapping[str, list[str]] = field(default_factory=dict)

    def signers_for(self, kid: bytes) -> tuple[TrustedSigner, ...]:
        return self.signers.get(kid, ())

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(sorted(self.rules)) if self.rules is not None else ()


def _index(signers: Iterable[TrustedSigner]) -> dict[bytes, tuple[TrustedSigner, ...]]:
    by_kid: dict[bytes, list[TrustedSigner]] = {}
    for signer in signers:
        by_kid.setdefault(signer.kid, []).append(signer)
    return {kid: tuple(group) for kid, group in by_kid.items()}


def _value_set_codes(value_sets: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    codes: dict[str, frozenset[str]] = {}
    for set_id, body in value_sets.items():
        values = body.get("valueSetValues") if isinstance(body, dict) else None
        if not isinstance(values, dict):
            raise TrustBundleError("BUNDLE_MALFORMED", f"value set {set_id!r} has no values")
        codes[str(set_id)] = frozenset(str(code) for code in values)
    return codes


def _rules(rules: Mapping[str, Any]) -> dict[str, tuple[Rule, ...]]:
    parsed: dict[str, tuple[Rule, ...]] = {}
    for mode, items in rules.items():
        if not isinstance(items, list):
            raise TrustBundleError("BUNDLE_MALFORMED", f"rules of mode {mode!r} are not a list")
        parsed[str(mode)] = tuple(Rule.from_json(item) for item in items)
    return parsed


def _revocations(revocations: Mapping[str, Any]) -> dict[str, frozenset[bytes]]:
    parsed: dict[str, frozenset[bytes]] = {}
    for kind in ("SIGNATURE", "UCI", "COUNTRYCODEUCI"):
        entries = revocations.get(kind, [])
        if not isinstance(entries, list):
            raise TrustBundleError("BUNDLE_MALFORMED", f"revocations {kind} is not a list")
        parsed[kind] = frozenset(_b64(entry, f"revocation {kind}") for entry in entries)
    return parsed


def _b64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise TrustBundleError("BUNDLE_MALFORMED", f"{what} is not base64") from None


def trust_from_certificates(
    certificates: Iterable[bytes | x509.Certificate],
    *,
    value_sets: Mapping[str, Any] | None = None,
    rules: Mapping[str, Any] | None = None,
    revocations: Mapping[str, Any] | None = None,
) -> TrustStore:
    """A trust store from DSCs (DER bytes or ``cryptography`` certificates), KID = hash of DER.

    ``value_sets``, ``rules`` and ``revocations`` take the trust bundle's JSON shapes; a part
    left out is "not available" and its check gives ERROR.
    """
    ders = [
        c.public_bytes(serialization.Encoding.DER) if isinstance(c, x509.Certificate) else c
        for c in certificates
    ]
    codes = _value_set_codes(value_sets) if value_sets is not None else None
    return TrustStore(
        signers=_index(TrustedSigner.from_der(der) for der in ders),
        value_sets=codes,
        rules=_rules(rules) if rules is not None else None,
        revocations=_revocations(revocations) if revocations is not None else None,
        value_set_lists={k: sorted(v) for k, v in (codes or {}).items()},
    )


def load_pinned_key(pem_or_der: bytes) -> ec.EllipticCurvePublicKey:
    """The pinned trust-bundle public key from PEM or DER (SubjectPublicKeyInfo)."""
    try:
        if pem_or_der.lstrip().startswith(b"-----"):
            key = serialization.load_pem_public_key(pem_or_der)
        else:
            key = serialization.load_der_public_key(pem_or_der)
    except (ValueError, TypeError) as exc:
        raise TrustBundleError("PIN_INVALID", f"the pinned key does not load ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TrustBundleError("PIN_INVALID", "the pinned key must be an EC P-256 key (ES256)")
    return key


def bundle_kid(key: ec.EllipticCurvePublicKey) -> bytes:
    """First 8 bytes of SHA-256 of the key's SubjectPublicKeyInfo DER (interfaces.md)."""
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()[:8]


def _verified_payload(data: bytes, pinned: ec.EllipticCurvePublicKey) -> bytes:
    if len(data) > MAX_BUNDLE_BYTES:
        raise TrustBundleError("BUNDLE_TOO_LARGE", f"bundle larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        sign1 = wire.parse_sign1(data)
        alg, kid = wire.header_alg(sign1), wire.header_kid(sign1)
        signature = wire.es256_raw_to_der(sign1.signature)
    except wire.WireError as exc:
        raise TrustBundleError("BUNDLE_MALFORMED", f"not a signed bundle ({exc.code})") from None
    if alg != wire.ALG_ES256 or wire.HEADER_ALG not in sign1.protected_header:
        raise TrustBundleError("BUNDLE_MALFORMED", "the bundle must be signed ES256 (protected)")
    if kid != bundle_kid(pinned):
        raise TrustBundleError("BUNDLE_KEY_MISMATCH", "the bundle is signed by another key")
    try:
        pinned.verify(
            signature, wire.sig_structure(sign1.protected, sign1.payload), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        raise TrustBundleError("BUNDLE_SIGNATURE_INVALID", "the bundle signature fails") from None
    return sign1.payload


def _utc(text: Any, what: str) -> datetime:
    try:
        return parse_datetime(str(text))
    except CertLogicError:
        raise TrustBundleError("BUNDLE_MALFORMED", f"{what} is not an RFC 3339 time") from None


def load_trust_bundle(data: bytes, pinned_key: ec.EllipticCurvePublicKey | bytes) -> TrustStore:
    """Verify a signed trust bundle against the pinned key and parse it.

    Raises :class:`TrustBundleError` (never returns a store) when the signature fails, the key is
    not the pinned one, or the content is malformed. Staleness is not judged here: the bundle's
    ``valid_until`` is kept, and :func:`verifier.verify` gives ERROR(TRUST_STALE) after it.
    """
    key = load_pinned_key(pinned_key) if isinstance(pinned_key, bytes) else pinned_key
    payload = _verified_payload(data, key)
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TrustBundleError("BUNDLE_MALFORMED", "the bundle payload is not JSON") from None
    if not isinstance(body, dict) or body.get("format") != BUNDLE_FORMAT:
        raise TrustBundleError("BUNDLE_MALFORMED", f"not a {BUNDLE_FORMAT}")
    if body.get("version") != 1:
        raise TrustBundleError("BUNDLE_VERSION", f"bundle version {body.get('version')!r} unknown")
    try:
        signers = [_bundle_signer(entry) for entry in body["dscs"]]
        codes = _value_set_codes(body.get("value_sets", {}))
        store = TrustStore(
            signers=_index(signers),
            value_sets=codes,
            rules=_rules(body.get("rules", {})),
            revocations=_revocations(body.get("revocations", {})),
            issuer=str(body.get("issuer", "")),
            sequence=int(body["sequence"]),
            issued_at=_utc(body["issued_at"], "issued_at"),
            valid_until=_utc(body["valid_until"], "valid_until"),
            value_set_lists={k: sorted(v) for k, v in codes.items()},
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise TrustBundleError("BUNDLE_MALFORMED", f"missing or mistyped member {exc}") from None
    return store


def _bundle_signer(entry: Any) -> TrustedSigner:
    der = _b64(entry["certificate"], "a DSC certificate")
    kid = _b64(entry["kid"], "a DSC kid")
    if kid != wire.kid_of(der):
        raise TrustBundleError("BUNDLE_MALFORMED", "a DSC's kid is not the hash of its DER")
    types = entry.get("certificate_types")
    return TrustedSigner.from_der(
        der,
        kid=kid,
        country=entry.get("country"),
        bundle_types=frozenset(types) if types is not None else None,
    )
