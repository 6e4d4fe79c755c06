"""verify() over our own signed certificates: every check, its code and the verdict."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certs import wire
from tests.verifier.conftest import NOW
from verifier import Check, Code, Status, TrustStore, decode, verify
from verifier.testing import TestSigner, make_signer, sample_vaccination, sign_hc1

YEAR = timedelta(days=365)


def _hc1(signer: TestSigner, **changes: object) -> str:
    dcc = sample_vaccination()
    dcc["v"][0].update(changes)
    return sign_hc1(signer, dcc, issued_at=NOW - timedelta(days=30), expires=NOW + YEAR)


def test_a_good_certificate_is_valid_with_every_check_run(
    signer: TestSigner, trust: TrustStore
) -> None:
    result = verify(decode(_hc1(signer)), trust=trust, now=NOW, mode="venue")
    assert result.status is Status.VALID, result.failed
    assert [r.check for r in result.checks] == [
        Check.PREFIX, Check.BASE45, Check.ZLIB, Check.COSE, Check.TRUST, Check.ALG, Check.KID,
        Check.SIGNATURE, Check.DSC, Check.CWT, Check.EXPIRY, Check.SCHEMA, Check.VALUE_SETS,
        Check.REVOCATION, Check.RULES,
    ]  # fmt: skip
    assert result.code is None
    assert result.certificate_type == "v"
    assert result.holder is not None
    assert (result.holder.family_name, result.holder.date_of_birth) == ("山田", "1980-04-01")
    assert result.holder.family_name_standardised is None  # venue shows no passport names


def test_border_mode_shows_the_standardised_names(signer: TestSigner, trust: TrustStore) -> None:
    result = verify(_hc1(signer), trust=trust, now=NOW, mode="border:DE")
    assert result.status is Status.VALID, result.failed
    assert result.holder is not None and result.holder.family_name_standardised == "YAMADA"


def test_incomplete_series_fails_the_venue_rules(signer: TestSigner, trust: TrustStore) -> None:
    result = verify(_hc1(signer, dn=1), trust=trust, now=NOW, mode="venue")
    assert (result.status, result.code) == (Status.INVALID, Code.RULE_FAILED)
    assert "VR-JP-0001" in result.checks[-1].detail


def test_border_rule_on_dose_age(signer: TestSigner, trust: TrustStore) -> None:
    old = _hc1(signer, dt="2020-12-01")
    assert verify(old, trust=trust, now=NOW, mode="venue").status is Status.VALID
    result = verify(old, trust=trust, now=NOW, mode="border:DE")
    assert (result.status, result.code) == (Status.INVALID, Code.RULE_FAILED)
    assert "VR-DE-0004" in result.checks[-1].detail


def test_unknown_mode_is_could_not_decide(signer: TestSigner, trust: TrustStore) -> None:
    result = verify(_hc1(signer), trust=trust, now=NOW, mode="border:FR")
    assert (result.status, result.code) == (Status.ERROR, Code.MODE_UNKNOWN)


def test_expired_and_not_yet_valid(signer: TestSigner, trust: TrustStore) -> None:
    hc1 = _hc1(signer)
    late = verify(hc1, trust=trust, now=NOW + YEAR + timedelta(hours=1), mode="venue")
    assert late.code in (Code.CERT_EXPIRED, Code.TRUST_STALE)
    early = verify(hc1, trust=trust, now=NOW - timedelta(days=31), mode="venue")
    assert early.code in (Code.CERT_NOT_YET_VALID, Code.TRUST_NOT_YET_VALID)


def test_a_stale_bundle_makes_every_result_an_error(signer: TestSigner, trust: TrustStore) -> None:
    assert trust.valid_until is not None
    result = verify(_hc1(signer), trust=trust, now=trust.valid_until + timedelta(seconds=1))
    assert (result.status, result.code) == (Status.ERROR, Code.TRUST_STALE)
    assert result.holder is None


def test_an_untrusted_signer_is_invalid(trust: TrustStore) -> None:
    stranger = make_signer()
    result = verify(_hc1(stranger), trust=trust, now=NOW)
    assert (result.status, result.code) == (Status.INVALID, Code.KID_UNKNOWN)
    assert result.holder is None


def test_not_in_value_set(signer: TestSigner, trust: TrustStore) -> None:
    result = verify(_hc1(signer, mp="Sputnik-V"), trust=trust, now=NOW)
    assert (result.status, result.code) == (Status.INVALID, Code.VALUE_NOT_IN_SET)


def test_schema_violation(signer: TestSigner, trust: TrustStore) -> None:
    result = verify(_hc1(signer, dn="two"), trust=trust, now=NOW)
    assert (result.status, result.code) == (Status.INVALID, Code.SCHEMA_INVALID)


def test_naive_now_is_refused(signer: TestSigner, trust: TrustStore) -> None:
    with pytest.raises(ValueError):
        verify(_hc1(signer), trust=trust, now=NOW.replace(tzinfo=None))


def test_result_is_frozen(signer: TestSigner, trust: TrustStore) -> None:
    result = verify(_hc1(signer), trust=trust, now=NOW)
    with pytest.raises(AttributeError):
        result.status = Status.INVALID  # type: ignore[misc]


def test_prefix_missing(trust: TrustStore) -> None:
    result = verify("HC2:ABC", trust=trust, now=NOW)
    assert (result.status, result.code) == (Status.INVALID, Code.PREFIX_INVALID)
    assert wire.HC1_PREFIX == "HC1:"


def test_every_result_code_is_documented() -> None:
    from pathlib import Path

    from verifier import Code

    page = (Path(__file__).resolve().parents[2] / "docs" / "verifier.md").read_text("utf-8")
    missing = [code.value for code in Code if f"`{code.value}`" not in page]
    assert missing == []


def _rule(
    version: str,
    logic: object,
    *,
    kind: str = "Vaccination",
    valid_to: str = "2030-01-01T00:00:00Z",
) -> dict[str, object]:
    return {
        "Identifier": "VR-JP-0009",
        "Type": "Acceptance",
        "Country": "JP",
        "Version": version,
        "SchemaVersion": "1.3.0",
        "Engine": "CERTLOGIC",
        "EngineVersion": "1.2.2",
        "CertificateType": kind,
        "Description": [{"lang": "ja", "desc": "規則"}, {"lang": "en", "desc": f"rule {version}"}],
        "ValidFrom": "2021-01-01T00:00:00Z",
        "ValidTo": valid_to,
        "AffectedFields": [],
        "Logic": logic,
    }


@pytest.mark.parametrize(
    ("rules", "status"),
    [
        # the newest version of a rule is the one that applies
        ([_rule("1.0.0", False), _rule("1.10.0", True), _rule("1.9.0", False)], Status.VALID),
        ([_rule("1.0.0", True), _rule("2.0.0", False)], Status.INVALID),
        # a rule past its ValidTo does not apply (the older version then does)
        (
            [_rule("1.0.0", True), _rule("2.0.0", False, valid_to="2021-08-01T00:00:00Z")],
            Status.VALID,
        ),
        # General rules apply to every type, others only to theirs
        ([_rule("1.0.0", False, kind="General")], Status.INVALID),
        ([_rule("1.0.0", False, kind="Test")], Status.VALID),
        # a rule that cannot be evaluated is "could not decide"
        ([_rule("1.0.0", {"plusTime": [{"var": "payload.nam"}, 1, "day"]})], Status.ERROR),
    ],
)
def test_rule_selection(
    rules: list[object], status: Status, signer: TestSigner, bundle_key: object
) -> None:
    from verifier import load_trust_bundle
    from verifier.testing import make_trust_bundle, public_pem

    bundle = make_trust_bundle(
        bundle_key,  # type: ignore[arg-type]
        [signer.certificate_der],
        now=NOW - timedelta(days=1),
        rules={"venue": rules},
    )
    trust = load_trust_bundle(bundle, public_pem(bundle_key))  # type: ignore[arg-type]
    result = verify(_hc1(signer), trust=trust, now=NOW)
    assert result.status is status, result.failed
    if status is Status.INVALID:
        assert "VR-JP-0009: rule" in result.checks[-1].detail  # the English description
