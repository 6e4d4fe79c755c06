"""The signed trust bundle (format v1): what an offline verifier needs, in one COSE_Sign1.

The payload is UTF-8 JSON with sorted keys and no whitespace (so the same content is the same
bytes); it is signed ES256 by the trust-bundle key, whose public key verifiers pin, with the
protected header ``{1: -7, 4: bundle_kid}``. The format is documented in
``docs/trust-bundle.md``. This module builds and signs; what goes in (which DSCs, value sets,
rules, revocations) is the service's decision.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from certs import _cose
from certs.errors import TrustBundleError
from keys import (
    BundleSigner,
    CertificateType,
    KeysError,
    certificate_types,
    kid_of,
    load_certificate,
)

FORMAT = "vrs-trust-bundle"
VERSION = 1
MEDIA_TYPE = "application/cose"
#: The order certificate types are listed in.
_TYPE_ORDER = (CertificateType.VACCINATION, CertificateType.TEST, CertificateType.RECOVERY)
_MODE = re.compile(r"^(venue|border:[A-Z]{2})$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
HASH_LENGTH = 16


def rfc3339(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` of an aware datetime (whole seconds, UTC)."""
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise TrustBundleError("BAD_TIME", "times are aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class BundleDsc:
    """A document signer as the bundle lists it, read from its certificate."""

    certificate_der: bytes
    country: str = "JP"

    def __post_init__(self) -> None:
        if not isinstance(self.country, str) or not _COUNTRY.fullmatch(self.country):
            raise TrustBundleError("BAD_DSC", "a DSC's country is an ISO 3166 alpha-2 code")
        try:
            load_certificate(self.certificate_der)
        except KeysError as exc:
            raise TrustBundleError("BAD_DSC", f"a DSC does not parse: {exc.message}") from exc

    def to_json(self) -> dict[str, Any]:
        certificate = load_certificate(self.certificate_der)
        kinds = certificate_types(certificate)
        return {
            "kid": _b64(kid_of(bytes(self.certificate_der))),
            "certificate": _b64(bytes(self.certificate_der)),
            "country": self.country,
            "not_before": rfc3339(certificate.not_valid_before_utc),
            "not_after": rfc3339(certificate.not_valid_after_utc),
            "certificate_types": [kind.value for kind in _TYPE_ORDER if kind in kinds],
        }


def _hashes(values: Iterable[bytes], what: str) -> list[str]:
    out = set()
    for value in values:
        if not isinstance(value, bytes) or len(value) != HASH_LENGTH:
            raise TrustBundleError("BAD_REVOCATION", f"{what} hashes are {HASH_LENGTH} bytes")
        out.add(_b64(value))
    return sorted(out)


@dataclass(frozen=True)
class Revocations:
    """Revoked certificates by their 16-byte hashes (EU DCC revocation hash types)."""

    signature: Sequence[bytes] = ()
    uci: Sequence[bytes] = ()
    countrycode_uci: Sequence[bytes] = field(default=())

    def to_json(self) -> dict[str, list[str]]:
        return {
            "SIGNATURE": _hashes(self.signature, "SIGNATURE"),
            "UCI": _hashes(self.uci, "UCI"),
            "COUNTRYCODEUCI": _hashes(self.countrycode_uci, "COUNTRYCODEUCI"),
        }


def bundle_payload(
    *,
    sequence: int,
    issued_at: datetime,
    valid_until: datetime,
    dscs: Sequence[BundleDsc],
    cscas: Sequence[bytes],
    value_sets: Mapping[str, Any],
    rules: Mapping[str, Sequence[Mapping[str, Any]]],
    revocations: Revocations,
    issuer: str = "JP",
) -> dict[str, Any]:
    """The v1 payload object (see ``docs/trust-bundle.md``), checked."""
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise TrustBundleError("BAD_SEQUENCE", "sequence is a non-negative integer")
    if rfc3339(valid_until) <= rfc3339(issued_at):
        raise TrustBundleError("BAD_TIME", "valid_until must be after issued_at")
    if not isinstance(issuer, str) or not _COUNTRY.fullmatch(issuer):
        raise TrustBundleError("BAD_ISSUER", "issuer is an ISO 3166 alpha-2 code")
    if any(not isinstance(dsc, BundleDsc) for dsc in dscs):
        raise TrustBundleError("BAD_DSC", "dscs are BundleDsc entries")
    for der in cscas:
        try:
            load_certificate(der)
        except KeysError as exc:
            raise TrustBundleError("BAD_CSCA", f"a CSCA does not parse: {exc.message}") from exc
    if not isinstance(value_sets, Mapping) or any(
        not isinstance(key, str) or not isinstance(value, Mapping)
        for key, value in value_sets.items()
    ):
        raise TrustBundleError("BAD_VALUE_SETS", "value_sets maps an id to its value-set JSON")
    if not isinstance(rules, Mapping):
        raise TrustBundleError("BAD_RULES", "rules maps a check mode to its list of rules")
    for mode, mode_rules in rules.items():
        if not isinstance(mode, str) or not _MODE.fullmatch(mode):
            raise TrustBundleError("BAD_RULES", f"{mode!r} is not 'venue' or 'border:XX'")
        if isinstance(mode_rules, str | bytes) or any(
            not isinstance(rule, Mapping) for rule in mode_rules
        ):
            raise TrustBundleError("BAD_RULES", f"the rules of {mode} are a list of objects")
    if not isinstance(revocations, Revocations):
        raise TrustBundleError("BAD_REVOCATION", "revocations is a Revocations")
    return {
        "format": FORMAT,
        "version": VERSION,
        "issuer": issuer,
        "sequence": sequence,
        "issued_at": rfc3339(issued_at),
        "valid_until": rfc3339(valid_until),
        "dscs": [dsc.to_json() for dsc in dscs],
        "cscas": [_b64(bytes(der)) for der in cscas],
        "value_sets": {key: dict(value) for key, value in value_sets.items()},
        "rules": {mode: [dict(rule) for rule in mode_rules] for mode, mode_rules in rules.items()},
        "revocations": revocations.to_json(),
    }


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON, sorted keys, no whitespace: one content, one byte string."""
    try:
        return json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TrustBundleError("BAD_PAYLOAD", f"the bundle is not plain JSON: {exc}") from exc


def sign_bundle(payload: Mapping[str, Any], signer: BundleSigner) -> bytes:
    """The trust bundle's bytes: a COSE_Sign1 (tag 18, ES256, ``kid`` = the bundle KID)."""
    if getattr(signer, "algorithm", None) != "ES256":
        raise TrustBundleError("BAD_SIGNER", "the trust-bundle signer must sign ES256")
    cose, _ = _cose.sign1(encode_payload(payload), signer)
    return cose
