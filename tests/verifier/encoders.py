"""Deliberately unusual (and broken) encoders for tests: never in the shipped package.

Real certificates vary (shared/conformance/README.md): COSE tagged 61+18 or untagged, ``alg`` and
``kid`` in the unprotected header, ``iat``/``exp`` as floats, date-times with CBOR tag 0.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import cbor2

from certs import wire
from verifier.testing import TestSigner


def cose(
    signer: TestSigner,
    claims: dict[int, Any],
    *,
    tagging: str = "18",
    protected: dict[int, Any] | None = None,
    unprotected: dict[int, Any] | None = None,
    signature: bytes | None = None,
) -> bytes:
    """A COSE_Sign1 with full control over headers, tagging and the signature."""
    if protected is None:
        protected = {wire.HEADER_ALG: signer.alg, wire.HEADER_KID: signer.kid}
    header = wire.protected_bytes(protected)
    payload = cbor2.dumps(claims, datetime_as_timestamp=False, timezone=None)
    signed = (
        signature if signature is not None else signer.sign(wire.sig_structure(header, payload))
    )
    body = [header, unprotected or {}, payload, signed]
    item: Any = body
    if tagging in ("18", "61+18"):
        item = cbor2.CBORTag(18, body)
    if tagging == "61+18":
        item = cbor2.CBORTag(61, item)
    return cbor2.dumps(item)


def claims(dcc: dict[str, Any], *, iat: float | None, exp: float | None) -> dict[int, Any]:
    data: dict[int, Any] = {wire.CWT_ISS: "JP", wire.CWT_HCERT: {wire.HCERT_EU_DCC: dcc}}
    if iat is not None:
        data[wire.CWT_IAT] = iat
    if exp is not None:
        data[wire.CWT_EXP] = exp
    return data


def test_dcc(sample_collection: datetime) -> dict[str, Any]:
    """A test-type DCC whose sample time is a CBOR tag-0 date-time (a datetime object)."""
    return {
        "ver": "1.3.0",
        "nam": {"fnt": "YAMADA", "gnt": "TARO"},
        "dob": "1990",
        "t": [
            {
                "tg": "840539006",
                "tt": "LP6464-4",
                "nm": "PCR",
                "sc": sample_collection,
                "tr": "260415000",
                "tc": "Clinic",
                "co": "JP",
                "is": "MHLW",
                "ci": "URN:UVCI:01:JP:T/1",
            }
        ],
    }


test_dcc.__test__ = False  # type: ignore[attr-defined]
