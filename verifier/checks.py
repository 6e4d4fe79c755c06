"""The verification checks after decoding, one small function each, in specification order.

Each check reads the shared :class:`Context` and returns one :class:`CheckResult`. The pipeline
(:data:`CHECKS`) stops at the first check that is not VALID. None of them does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from certs import wire
from verifier.certlogic import CertLogicError, is_truthy
from verifier.decode import json_value
from verifier.result import Check, CheckResult, Code
from verifier.schema import check_payload
from verifier.trust import Rule, TrustedSigner, TrustStore

__all__ = ["CHECKS", "VALUE_SET_FIELDS", "ClaimsProblem", "Context"]

_ES256_HASH = ec.ECDSA(hashes.SHA256())
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_ALGORITHMS = {wire.ALG_ES256: "ES256", wire.ALG_PS256: "PS256"}
_GROUPS = ("v", "t", "r")

#: Which value set each coded member of a DCC entry must come from, per certificate type.
VALUE_SET_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "v": (
        ("tg", "disease-agent-targeted"),
        ("vp", "sct-vaccines-covid-19"),
        ("mp", "vaccines-covid-19-names"),
        ("ma", "vaccines-covid-19-auth-holders"),
        ("co", "country-2-codes"),
    ),
    "t": (
        ("tg", "disease-agent-targeted"),
        ("tt", "covid-19-lab-test-type"),
        ("ma", "covid-19-lab-test-manufacturer-and-name"),
        ("tr", "covid-19-lab-result"),
        ("co", "country-2-codes"),
    ),
    "r": (("tg", "disease-agent-targeted"), ("co", "country-2-codes")),
}


class ClaimsProblem(Exception):
    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Claims:
    """The CWT claims of a DCC, read once."""

    issuer: str | None
    issued_at: datetime | None
    expires: datetime | None
    dcc: dict[str, Any]
    types: frozenset[str]  # the certificate groups present ("v", "t", "r")

    @property
    def certificate_type(self) -> str | None:
        return next(iter(self.types)) if len(self.types) == 1 else None


@dataclass
class Context:
    """What the checks share: inputs, and what earlier checks established."""

    sign1: wire.Sign1
    trust: TrustStore
    now: datetime
    mode: str
    skew: timedelta
    alg: int | None = None
    kid: bytes | None = None
    signer: TrustedSigner | None = None
    _claims: Claims | ClaimsProblem | None = field(default=None, repr=False)
    _payload_json: Any = field(default=None, repr=False)

    def claims(self) -> Claims:
        """The parsed CWT claims; raises :class:`ClaimsProblem` when they cannot be read."""
        if self._claims is None:
            try:
                self._claims = _read_claims(self.sign1.payload)
            except ClaimsProblem as problem:
                self._claims = problem
        if isinstance(self._claims, ClaimsProblem):
            raise self._claims
        return self._claims

    def payload_json(self) -> Any:
        if self._payload_json is None:
            self._payload_json = json_value(self.claims().dcc)
        return self._payload_json


def _time_claim(claims: dict[Any, Any], key: int, name: str) -> datetime | None:
    value = claims.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClaimsProblem(Code.CWT_CLAIM_TYPE, f"{name} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ClaimsProblem(Code.CWT_CLAIM_TYPE, f"{name} is not a finite number")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, ValueError, OSError):
        raise ClaimsProblem(Code.CWT_CLAIM_TYPE, f"{name} is out of range") from None


def _read_claims(payload: bytes) -> Claims:
    try:
        claims = wire.cbor_loads(payload)
    except wire.WireError as exc:
        raise ClaimsProblem(Code.CWT_INVALID, f"the payload is not CBOR ({exc.code})") from None
    if not isinstance(claims, dict):
        raise ClaimsProblem(Code.CWT_INVALID, "the CWT claims are not a map")
    hcert = claims.get(wire.CWT_HCERT)
    dcc = hcert.get(wire.HCERT_EU_DCC) if isinstance(hcert, dict) else None
    if not isinstance(dcc, dict):
        raise ClaimsProblem(Code.HCERT_MISSING, "no EU DCC in the hcert claim (-260 / 1)")
    issuer = claims.get(wire.CWT_ISS)
    if issuer is not None and not isinstance(issuer, str):
        raise ClaimsProblem(Code.CWT_CLAIM_TYPE, "iss is not text")
    types = frozenset(g for g in _GROUPS if isinstance(dcc.get(g), list) and dcc.get(g))
    if not types:
        raise ClaimsProblem(Code.CERTIFICATE_TYPE_UNKNOWN, "no vaccination, test or recovery")
    return Claims(
        issuer=issuer,
        issued_at=_time_claim(claims, wire.CWT_IAT, "iat"),
        expires=_time_claim(claims, wire.CWT_EXP, "exp"),
        dcc=dcc,
        types=types,
    )


def check_trust(ctx: Context) -> CheckResult:
    trust = ctx.trust
    if trust.valid_until is not None and ctx.now > trust.valid_until:
        return CheckResult.error(
            Check.TRUST,
            Code.TRUST_STALE,
            f"trust bundle expired {trust.valid_until:%Y-%m-%dT%H:%MZ}",
        )
    if trust.issued_at is not None and ctx.now + ctx.skew < trust.issued_at:
        return CheckResult.error(
            Check.TRUST, Code.TRUST_NOT_YET_VALID, "trust bundle issued after now (clock wrong?)"
        )
    return CheckResult.valid(Check.TRUST, f"sequence {trust.sequence}" if trust.sequence else "")


def check_alg(ctx: Context) -> CheckResult:
    try:
        alg = wire.header_alg(ctx.sign1)
    except wire.WireError as exc:
        return CheckResult.invalid(Check.ALG, Code.COSE_HEADER, exc.message)
    if alg is None:
        return CheckResult.invalid(Check.ALG, Code.ALG_MISSING, "no alg header")
    if alg not in _ALGORITHMS:
        return CheckResult.invalid(Check.ALG, Code.ALG_UNSUPPORTED, f"alg {alg} is not accepted")
    ctx.alg = alg
    return CheckResult.valid(Check.ALG, _ALGORITHMS[alg])


def check_kid(ctx: Context) -> CheckResult:
    try:
        kid = wire.header_kid(ctx.sign1)
    except wire.WireError as exc:
        return CheckResult.invalid(Check.KID, Code.COSE_HEADER, exc.message)
    if kid is None:
        return CheckResult.invalid(Check.KID, Code.KID_MISSING, "no kid header")
    ctx.kid = kid
    count = len(ctx.trust.signers_for(kid))
    if count == 0:
        return CheckResult.invalid(
            Check.KID, Code.KID_UNKNOWN, f"no trusted DSC has kid {kid.hex()}"
        )
    return CheckResult.valid(Check.KID, f"{kid.hex()} ({count} DSC)")


def _signature_holds(signer: TrustedSigner, alg: int, signed: bytes, signature: bytes) -> bool:
    key = signer.public_key
    try:
        if alg == wire.ALG_ES256 and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(wire.es256_raw_to_der(signature), signed, _ES256_HASH)
            return True
        if alg == wire.ALG_PS256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, _PSS, hashes.SHA256())
            return True
    except (InvalidSignature, wire.WireError):
        return False
    return False


def check_signature(ctx: Context) -> CheckResult:
    assert ctx.alg is not None and ctx.kid is not None
    signed = wire.sig_structure(ctx.sign1.protected, ctx.sign1.payload)
    for signer in ctx.trust.signers_for(ctx.kid):
        if _signature_holds(signer, ctx.alg, signed, ctx.sign1.signature):
            ctx.signer = signer
            return CheckResult.valid(Check.SIGNATURE)
    return CheckResult.invalid(
        Check.SIGNATURE, Code.SIGNATURE_INVALID, "no trusted DSC with this kid verifies it"
    )


def check_dsc(ctx: Context) -> CheckResult:
    signer = ctx.signer
    assert signer is not None
    if ctx.now + ctx.skew < signer.not_before:
        return CheckResult.invalid(Check.DSC, Code.DSC_NOT_YET_VALID, "the DSC is not valid yet")
    if ctx.now - ctx.skew > signer.not_after:
        return CheckResult.invalid(Check.DSC, Code.DSC_EXPIRED, "the DSC has expired")
    return key_usage(signer, ctx)


def key_usage(signer: TrustedSigner, ctx: Context) -> CheckResult:
    """The DSC's extended key usage (and the bundle's own restriction) allows the DCC's type."""
    if signer.extension_error is not None:
        return CheckResult.error(Check.DSC, Code.DSC_EXTENSIONS_UNPARSABLE, signer.extension_error)
    try:
        types = ctx.claims().types
    except ClaimsProblem:
        return CheckResult.valid(Check.DSC, "type unknown: usage judged with the claims")
    allowed = signer.allowed_types
    if signer.bundle_types is not None:
        allowed = allowed & signer.bundle_types
    refused = sorted(types - allowed)
    if refused:
        return CheckResult.invalid(
            Check.DSC, Code.DSC_KEY_USAGE, f"the DSC may not sign type {', '.join(refused)}"
        )
    return CheckResult.valid(Check.DSC)


def check_cwt(ctx: Context) -> CheckResult:
    try:
        claims = ctx.claims()
    except ClaimsProblem as problem:
        return CheckResult.invalid(Check.CWT, problem.code, problem.message)
    return CheckResult.valid(Check.CWT, f"type {'+'.join(sorted(claims.types))}")


def check_expiry(ctx: Context) -> CheckResult:
    claims = ctx.claims()
    signer = ctx.signer
    if claims.issued_at is not None and claims.issued_at > ctx.now + ctx.skew:
        return CheckResult.invalid(Check.EXPIRY, Code.CERT_NOT_YET_VALID, "issued in the future")
    if claims.expires is not None and claims.expires < ctx.now - ctx.skew:
        return CheckResult.invalid(
            Check.EXPIRY, Code.CERT_EXPIRED, f"expired {claims.expires:%Y-%m-%dT%H:%M:%SZ}"
        )
    if signer is not None:
        if claims.issued_at is not None and claims.issued_at < signer.not_before:
            return CheckResult.invalid(
                Check.EXPIRY, Code.CERT_OUTSIDE_DSC_VALIDITY, "issued before its DSC was valid"
            )
        if claims.expires is not None and claims.expires > signer.not_after:
            return CheckResult.invalid(
                Check.EXPIRY, Code.CERT_OUTSIDE_DSC_VALIDITY, "expires after its DSC"
            )
    return CheckResult.valid(Check.EXPIRY, "" if claims.expires else "no expiry date")


def check_schema(ctx: Context) -> CheckResult:
    problem = check_payload(ctx.payload_json())
    if problem is None:
        return CheckResult.valid(Check.SCHEMA, str(ctx.claims().dcc.get("ver")))
    detail = f"{problem.path}: {problem.reason}"
    if problem.code == "SCHEMA_VERSION_UNKNOWN":
        return CheckResult.error(Check.SCHEMA, Code.SCHEMA_VERSION_UNKNOWN, detail)
    return CheckResult.invalid(Check.SCHEMA, Code.SCHEMA_INVALID, detail)


def check_value_sets(ctx: Context) -> CheckResult:
    value_sets = ctx.trust.value_sets
    if value_sets is None:
        return CheckResult.error(
            Check.VALUE_SETS, Code.VALUE_SETS_UNAVAILABLE, "the trust store has no value sets"
        )
    claims = ctx.claims()
    for group in sorted(claims.types):
        for entry in claims.dcc[group]:
            for member, set_id in VALUE_SET_FIELDS[group]:
                if member not in entry:
                    continue
                codes = value_sets.get(set_id)
                if codes is None:
                    return CheckResult.error(
                        Check.VALUE_SETS, Code.VALUE_SETS_UNAVAILABLE, f"no value set {set_id}"
                    )
                if entry[member] not in codes:
                    return CheckResult.invalid(
                        Check.VALUE_SETS,
                        Code.VALUE_NOT_IN_SET,
                        f"{group}.{member} {entry[member]!r} is not in {set_id}",
                    )
    return CheckResult.valid(Check.VALUE_SETS)


def check_revocation(ctx: Context) -> CheckResult:
    revoked = ctx.trust.revocations
    if revoked is None:
        return CheckResult.error(
            Check.REVOCATION, Code.REVOCATIONS_UNAVAILABLE, "the trust store has no revocations"
        )
    assert ctx.alg is not None
    sign1 = ctx.sign1
    # the signature has verified, so an ES256 one is the 64 bytes the hash needs
    if wire.signature_hash(sign1.signature, ctx.alg) in revoked.get("SIGNATURE", ()):
        return CheckResult.invalid(Check.REVOCATION, Code.REVOKED, "signature hash revoked")
    claims = ctx.claims()
    for group in sorted(claims.types):
        for entry in claims.dcc[group]:
            uvci = entry.get("ci")
            if not isinstance(uvci, str):
                continue
            if wire.uci_hash(uvci) in revoked.get("UCI", ()):
                return CheckResult.invalid(Check.REVOCATION, Code.REVOKED, "UVCI revoked")
            countries = {c for c in (claims.issuer, entry.get("co")) if isinstance(c, str)}
            by_country = revoked.get("COUNTRYCODEUCI", ())
            if any(wire.countrycode_uci_hash(c, uvci) in by_country for c in countries):
                return CheckResult.invalid(Check.REVOCATION, Code.REVOKED, "country+UVCI revoked")
    return CheckResult.valid(Check.REVOCATION)


def _current_rules(rules: tuple[Rule, ...], ctx: Context, country: str | None) -> list[Rule]:
    """The newest version of each rule that applies to this certificate type now."""
    claims = ctx.claims()
    newest: dict[str, Rule] = {}
    for rule in rules:
        if country is not None and rule.country != country:
            continue
        if not all(rule.applies(t, ctx.now) for t in claims.types):
            continue
        held = newest.get(rule.identifier)
        if held is None or rule.version > held.version:
            newest[rule.identifier] = rule
    return [newest[key] for key in sorted(newest)]


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def check_rules(ctx: Context) -> CheckResult:
    rule_sets = ctx.trust.rules
    if rule_sets is None:
        return CheckResult.error(Check.RULES, Code.NO_RULES, "the trust store has no rules")
    if ctx.mode not in rule_sets:
        known = ", ".join(sorted(rule_sets)) or "none"
        return CheckResult.error(Check.RULES, Code.MODE_UNKNOWN, f"no mode {ctx.mode} ({known})")
    country = ctx.mode.split(":", 1)[1] if ctx.mode.startswith("border:") else None
    claims = ctx.claims()
    data = {
        "payload": ctx.payload_json(),
        "external": {
            "valueSets": ctx.trust.value_set_lists,
            "validationClock": _iso(ctx.now),
            "countryCode": country or ctx.trust.issuer or "",
            "exp": _iso(claims.expires),
            "iat": _iso(claims.issued_at),
        },
    }
    failed: list[str] = []
    errors: list[str] = []
    rules = _current_rules(rule_sets[ctx.mode], ctx, country)
    for rule in rules:
        try:
            passed = is_truthy(rule.evaluate(data))
        except CertLogicError as exc:
            errors.append(f"{rule.identifier}: {exc.message}")
            continue
        if not passed:
            failed.append(f"{rule.identifier}: {rule.description}")
    if failed:
        return CheckResult.invalid(Check.RULES, Code.RULE_FAILED, "; ".join(failed))
    if errors:
        return CheckResult.error(Check.RULES, Code.RULE_EVALUATION_ERROR, "; ".join(errors))
    return CheckResult.valid(Check.RULES, f"{len(rules)} rules passed")


#: The checks after decoding, in the order of the specification.
CHECKS: tuple[Callable[[Context], CheckResult], ...] = (
    check_trust,
    check_alg,
    check_kid,
    check_signature,
    check_dsc,
    check_cwt,
    check_expiry,
    check_schema,
    check_value_sets,
    check_revocation,
    check_rules,
)
