"""The stages of one dgc-testdata file, each run with the verifier's own parts.

A stage returns True when it succeeded, False when it failed; the conformance test compares that
with the file's ``EXPECTEDxxx`` flag (see shared/conformance/README.md for what each flag means).
"""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import cbor2

from certs import wire
from verifier.certlogic import parse_datetime
from verifier.checks import (
    ClaimsProblem,
    Context,
    check_alg,
    check_expiry,
    check_kid,
    check_signature,
    key_usage,
)
from verifier.decode import decode_text, json_value
from verifier.errors import TrustBundleError
from verifier.image import ImageProblem, read_qr_text
from verifier.result import Status
from verifier.schema import check_payload
from verifier.trust import TrustedSigner, TrustStore, trust_from_certificates


def _cose(case: dict[str, Any]) -> bytes:
    if "COSE" in case:
        return bytes.fromhex(case["COSE"])
    decoded = decode_text(case["PREFIX"])
    assert decoded.cose is not None, "no COSE in the file and none decodes from PREFIX"
    return decoded.cose


def _certificate(case: dict[str, Any]) -> bytes:
    return base64.b64decode(case["TESTCTX"]["CERTIFICATE"])


def _context(case: dict[str, Any], trust: TrustStore | None = None) -> Context:
    sign1 = wire.parse_sign1(_cose(case))
    clock = parse_datetime(case["TESTCTX"].get("VALIDATIONCLOCK") or "2021-06-01T00:00:00Z")
    store = trust or TrustStore(signers={})
    return Context(sign1, store, clock, "venue", timedelta(0))


def _same(a: Any, b: Any) -> bool:
    """Decoded values compared as JSON would hold them; date-times compared as instants."""
    a, b = json_value(a), json_value(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) and isinstance(b, str) and a != b and "T" in a and "T" in b:
        try:
            return parse_datetime(a.replace("Z", "")) == parse_datetime(b.replace("Z", ""))
        except ValueError:
            return False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(a == b)
    return bool(a == b)


class NotTestable(Exception):
    """The file sets a flag but lacks the data its stage needs (e.g. no picture at all)."""


def picture_decode(case: dict[str, Any]) -> bool:
    png = case.get("2DCODE") or case.get("_2DCODE")
    if not png:
        raise NotTestable("the file sets EXPECTEDPICTUREDECODE but holds no 2DCODE picture")
    try:
        return read_qr_text(base64.b64decode(png)) == case["PREFIX"]
    except (ImageProblem, ValueError, TypeError):
        return False


def unprefix(case: dict[str, Any]) -> bool:
    try:
        return wire.hc1_strip(case["PREFIX"]) == case["BASE45"]
    except wire.WireError:
        return False


def base45(case: dict[str, Any]) -> bool:
    try:
        compressed = wire.b45decode(case["BASE45"])
        if "COMPRESSED" in case:
            return compressed == bytes.fromhex(case["COMPRESSED"])
        # some files leave COMPRESSED out: then the decoded bytes must inflate to COSE
        return wire.zlib_decompress(compressed) == _cose(case)
    except wire.WireError:
        return False


def compression(case: dict[str, Any]) -> bool:
    try:
        if "COMPRESSED" in case:
            compressed = bytes.fromhex(case["COMPRESSED"])
        else:
            compressed = wire.b45decode(case["BASE45"])
        return wire.zlib_decompress(compressed) == _cose(case)
    except wire.WireError:
        return False


def _json(case: dict[str, Any]) -> Any:
    """The file's JSON member; a few files hold it as text (one as a Python literal)."""
    value = case["JSON"]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return ast.literal_eval(value)
    return value


def _claims_match(cose: bytes, case: dict[str, Any]) -> bool:
    sign1 = wire.parse_sign1(cose)
    claims = wire.cbor_loads(sign1.payload)
    dcc = claims[wire.CWT_HCERT][wire.HCERT_EU_DCC]
    if "CBOR" in case:
        expected = cbor2.loads(bytes.fromhex(case["CBOR"]))
        if not (_same(expected, claims) or _same(expected, dcc)):
            return False
    return "JSON" not in case or _same(dcc, _json(case))


def decode(case: dict[str, Any]) -> bool:
    try:
        return _claims_match(_cose(case), case)
    except (wire.WireError, KeyError, TypeError, AssertionError, ValueError):
        return False


def valid_json(case: dict[str, Any]) -> bool:
    decoded = decode_text(case["PREFIX"])
    if decoded.cose is None or not decoded.ok:
        return False
    try:
        return _claims_match(decoded.cose, case)
    except (wire.WireError, KeyError, TypeError, ValueError):
        return False


def _signed_context(case: dict[str, Any]) -> Context | None:
    """A context whose signature verified with the file's DSC, or None."""
    try:
        trust = trust_from_certificates([_certificate(case)])
        ctx = _context(case, trust)
    except (wire.WireError, TrustBundleError, ValueError):
        return None
    for check in (check_alg, check_kid, check_signature):
        if check(ctx).status is not Status.VALID:
            return None
    return ctx


def verify(case: dict[str, Any]) -> bool:
    return _signed_context(case) is not None


def expiration(case: dict[str, Any]) -> bool:
    try:
        ctx = _context(case)
        ctx.signer = TrustedSigner.from_der(_certificate(case))
        claims = ctx.claims()
    except (wire.WireError, TrustBundleError, ClaimsProblem, ValueError):
        return False
    signer = ctx.signer
    if claims.issued_at is None or claims.expires is None:
        return False
    if not signer.not_before <= ctx.now <= signer.not_after:
        return False
    return check_expiry(ctx).status is Status.VALID


def key_usage_stage(case: dict[str, Any]) -> bool:
    try:
        ctx = _context(case)
        signer = TrustedSigner.from_der(_certificate(case))
    except (wire.WireError, TrustBundleError, ValueError):
        return False
    return key_usage(signer, ctx).status is Status.VALID


def schema(case: dict[str, Any]) -> bool:
    try:
        ctx = _context(case)
        payload = ctx.payload_json()
    except (wire.WireError, ClaimsProblem, AssertionError):
        if "JSON" not in case:
            return False
        payload = _json(case)
    return check_payload(payload) is None


#: flag → (stage name, the stage)
STAGES: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "EXPECTEDPICTUREDECODE": ("picture", picture_decode),
    "EXPECTEDUNPREFIX": ("unprefix", unprefix),
    "EXPECTEDB45DECODE": ("base45", base45),
    "EXPECTEDCOMPRESSION": ("compression", compression),
    "EXPECTEDDECODE": ("decode", decode),
    "EXPECTEDVALIDJSON": ("valid-json", valid_json),
    "EXPECTEDVERIFY": ("verify", verify),
    "EXPECTEDEXPIRATIONCHECK": ("expiration", expiration),
    "EXPECTEDKEYUSAGE": ("key-usage", key_usage_stage),
    "EXPECTEDSCHEMAVALIDATION": ("schema", schema),
}
