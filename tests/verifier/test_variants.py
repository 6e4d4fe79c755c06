"""Real-world variation the verifier must accept, and signer/trust cases around the KID."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certs import wire
from tests.verifier import encoders
from tests.verifier.conftest import NOW
from verifier import (
    Code,
    Status,
    TrustedSigner,
    TrustStore,
    decode,
    trust_from_certificates,
    verify,
)
from verifier.testing import make_signer, sample_rules, sample_vaccination, sample_value_sets

YEAR = timedelta(days=365)
EMPTY_REVOCATIONS: dict[str, list[str]] = {"SIGNATURE": [], "UCI": [], "COUNTRYCODEUCI": []}


def _trust(*ders: bytes) -> TrustStore:
    return trust_from_certificates(
        ders, value_sets=sample_value_sets(), rules=sample_rules(), revocations=EMPTY_REVOCATIONS
    )


def _times(float_times: bool = False) -> tuple[float, float]:
    iat, exp = (NOW - timedelta(days=30)).timestamp(), (NOW + YEAR).timestamp()
    return (iat + 0.25, exp + 0.5) if float_times else (int(iat), int(exp))


@pytest.mark.parametrize("tagging", ["18", "61+18", "untagged"])
@pytest.mark.parametrize("header_place", ["protected", "unprotected", "alg-protected-kid-not"])
def test_taggings_and_header_places(tagging: str, header_place: str) -> None:
    signer = make_signer()
    alg, kid = {wire.HEADER_ALG: signer.alg}, {wire.HEADER_KID: signer.kid}
    protected, unprotected = {
        "protected": ({**alg, **kid}, {}),
        "unprotected": ({}, {**alg, **kid}),
        "alg-protected-kid-not": (alg, kid),
    }[header_place]
    iat, exp = _times()
    data = encoders.cose(
        signer,
        encoders.claims(sample_vaccination(), iat=iat, exp=exp),
        tagging=tagging,
        protected=protected,
        unprotected=unprotected,
    )
    decoded = decode(wire.hc1_encode(data))
    assert decoded.ok and decoded.sign1 is not None and decoded.sign1.tagging == tagging
    result = verify(decoded, trust=_trust(signer.certificate_der), now=NOW)
    assert result.status is Status.VALID, result.failed


def test_protected_kid_wins_over_unprotected() -> None:
    signer, other = make_signer(), make_signer()
    iat, exp = _times()
    data = encoders.cose(
        signer,
        encoders.claims(sample_vaccination(), iat=iat, exp=exp),
        unprotected={wire.HEADER_KID: other.kid},
    )
    trust = _trust(signer.certificate_der, other.certificate_der)
    assert verify(decode(data), trust=trust, now=NOW).status is Status.VALID


def test_float_times_and_tag0_datetimes() -> None:
    signer = make_signer()
    iat, exp = _times(float_times=True)
    dcc = encoders.test_dcc(NOW - timedelta(hours=5))
    data = encoders.cose(signer, encoders.claims(dcc, iat=iat, exp=exp))
    result = verify(decode(data), trust=_trust(signer.certificate_der), now=NOW, mode="border:DE")
    # a test certificate passes everything up to the rules; the DE rules here are for vaccinations
    assert result.status is Status.VALID, result.failed
    assert result.certificate_type == "t"


@pytest.mark.parametrize("bad", [True, "2021", float("nan"), float("inf"), 1e30])
def test_mistyped_time_claims(bad: object) -> None:
    signer = make_signer()
    claims = encoders.claims(sample_vaccination(), iat=None, exp=None)
    claims[wire.CWT_EXP] = bad
    result = verify(
        decode(encoders.cose(signer, claims)), trust=_trust(signer.certificate_der), now=NOW
    )
    assert (result.status, result.code) == (Status.INVALID, Code.CWT_CLAIM_TYPE)


def test_ps256() -> None:
    signer = make_signer(algorithm="PS256")
    iat, exp = _times()
    data = encoders.cose(signer, encoders.claims(sample_vaccination(), iat=iat, exp=exp))
    assert (
        verify(decode(data), trust=_trust(signer.certificate_der), now=NOW).status is Status.VALID
    )


def test_unsupported_alg_and_missing_kid() -> None:
    signer = make_signer()
    iat, exp = _times()
    body = encoders.claims(sample_vaccination(), iat=iat, exp=exp)
    trust = _trust(signer.certificate_der)
    eddsa = encoders.cose(
        signer, body, protected={wire.HEADER_ALG: -8, wire.HEADER_KID: signer.kid}
    )
    assert verify(decode(eddsa), trust=trust, now=NOW).code is Code.ALG_UNSUPPORTED
    no_alg = encoders.cose(signer, body, protected={wire.HEADER_KID: signer.kid})
    assert verify(decode(no_alg), trust=trust, now=NOW).code is Code.ALG_MISSING
    no_kid = encoders.cose(signer, body, protected={wire.HEADER_ALG: signer.alg})
    assert verify(decode(no_kid), trust=trust, now=NOW).code is Code.KID_MISSING


def test_every_dsc_sharing_a_kid_is_tried() -> None:
    signer, impostor = make_signer(), make_signer()
    shared_kid = signer.kid
    first = TrustedSigner.from_der(impostor.certificate_der, kid=shared_kid)
    second = TrustedSigner.from_der(signer.certificate_der)
    base = _trust()
    trust = TrustStore(
        signers={shared_kid: (first, second)},
        value_sets=base.value_sets,
        rules=base.rules,
        revocations=base.revocations,
        value_set_lists=base.value_set_lists,
    )
    iat, exp = _times()
    data = encoders.cose(signer, encoders.claims(sample_vaccination(), iat=iat, exp=exp))
    assert verify(decode(data), trust=trust, now=NOW).status is Status.VALID


def test_a_tampered_signature_is_invalid() -> None:
    signer = make_signer()
    iat, exp = _times()
    body = encoders.claims(sample_vaccination(), iat=iat, exp=exp)
    good = encoders.cose(signer, body)
    sign1 = wire.parse_sign1(good)
    flipped = bytes([sign1.signature[0] ^ 1]) + sign1.signature[1:]
    bad = encoders.cose(signer, body, signature=flipped)
    result = verify(decode(bad), trust=_trust(signer.certificate_der), now=NOW)
    assert (result.status, result.code) == (Status.INVALID, Code.SIGNATURE_INVALID)
    assert result.holder is None


@pytest.mark.parametrize("arc", ["current", "legacy"])
def test_key_usage_on_both_arcs(arc: str) -> None:
    test_only = make_signer(types=["t"], arc=arc)
    iat, exp = _times()
    data = encoders.cose(test_only, encoders.claims(sample_vaccination(), iat=iat, exp=exp))
    result = verify(decode(data), trust=_trust(test_only.certificate_der), now=NOW)
    assert (result.status, result.code) == (Status.INVALID, Code.DSC_KEY_USAGE)
    vaccination = make_signer(types=["v"], arc=arc)
    data = encoders.cose(vaccination, encoders.claims(sample_vaccination(), iat=iat, exp=exp))
    assert verify(decode(data), trust=_trust(vaccination.certificate_der), now=NOW).status is (
        Status.VALID
    )


def test_no_dcc_usage_allows_every_type() -> None:
    signer = make_signer(types=None)
    iat, exp = _times()
    data = encoders.cose(signer, encoders.claims(sample_vaccination(), iat=iat, exp=exp))
    assert (
        verify(decode(data), trust=_trust(signer.certificate_der), now=NOW).status is Status.VALID
    )


def test_expired_dsc_and_certificate_outliving_it() -> None:
    short = make_signer(not_after=NOW + timedelta(days=10))
    iat, exp = _times()
    data = encoders.cose(short, encoders.claims(sample_vaccination(), iat=iat, exp=exp))
    trust = _trust(short.certificate_der)
    assert verify(decode(data), trust=trust, now=NOW).code is Code.CERT_OUTSIDE_DSC_VALIDITY
    assert verify(decode(data), trust=trust, now=NOW + timedelta(days=11)).code is Code.DSC_EXPIRED


def test_missing_trust_parts_are_errors_not_verdicts() -> None:
    signer = make_signer()
    iat, exp = _times()
    data = decode(encoders.cose(signer, encoders.claims(sample_vaccination(), iat=iat, exp=exp)))
    bare = trust_from_certificates([signer.certificate_der])
    result = verify(data, trust=bare, now=NOW)
    assert (result.status, result.code) == (Status.ERROR, Code.VALUE_SETS_UNAVAILABLE)
