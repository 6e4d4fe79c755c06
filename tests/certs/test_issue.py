"""certs.issue: every certificate decodes and verifies with pycose and with our minimal decoder."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs import (
    HolderName,
    PayloadError,
    SigningError,
    Vaccination,
    is_valid_uvci,
    issue,
    vaccination_payload,
)
from certs.testing import (
    TEST_NOW,
    make_certificate,
    make_test_signer,
    sample_name,
    sample_vaccination,
)
from keys import CertificateType
from tests.certs.oracles import assert_certificate_is_sound

SIGNER = make_test_signer()


def test_a_certificate_verifies_with_pycose_and_the_minimal_decoder() -> None:
    issued = make_certificate(signer=SIGNER)
    assert issued.hc1.startswith("HC1:")
    assert is_valid_uvci(issued.uvci)
    assert issued.issued_at == TEST_NOW
    assert issued.expires_at == TEST_NOW + timedelta(days=365)
    assert_certificate_is_sound(issued, SIGNER.certificate_der)


def test_the_payload_is_schema_1_3_0_with_one_vaccination() -> None:
    issued = make_certificate(signer=SIGNER)
    assert issued.payload == {
        "ver": "1.3.0",
        "nam": {"fn": "山田", "fnt": "YAMADA", "gn": "太郎", "gnt": "TARO"},
        "dob": "1980-04-01",
        "v": [
            {
                "tg": "840539006",
                "vp": "1119349007",
                "mp": "EU/1/20/1528",
                "ma": "ORG-100030215",
                "dn": 2,
                "sd": 2,
                "dt": "2025-12-20",
                "co": "JP",
                "is": "Ministry of Health, Labour and Welfare, Japan",
                "ci": issued.uvci,
            }
        ],
    }


@pytest.mark.parametrize(
    ("dose", "series", "expected"),
    [
        (1, 2, (1, 2)),
        (2, 2, (2, 2)),
        (3, 2, (3, 3)),
        (4, 2, (4, 4)),
        (1, 1, (1, 1)),
        (2, 1, (2, 2)),
    ],
)
def test_dose_and_series_follow_the_booster_rule(
    dose: int, series: int, expected: tuple[int, int]
) -> None:
    vaccination = Vaccination(
        product="EU/1/20/1525",
        manufacturer="ORG-100001417",
        prophylaxis="29061000087103",
        dose_number=dose,
        series_length=series,
        date=date(2025, 12, 1),
    )
    entry = make_certificate(signer=SIGNER, vaccination=vaccination).payload["v"][0]
    assert (entry["dn"], entry["sd"]) == expected


def test_no_given_name_leaves_gn_and_gnt_out() -> None:
    issued = make_certificate(signer=SIGNER, name=HolderName("マドンナ", "", "MADONNA", ""))
    assert issued.payload["nam"] == {"fn": "マドンナ", "fnt": "MADONNA"}
    assert_certificate_is_sound(issued, SIGNER.certificate_der)


def test_expiry_never_passes_the_dsc() -> None:
    short = make_test_signer(validity=timedelta(days=30))
    issued = make_certificate(signer=short)
    assert issued.expires_at == TEST_NOW + timedelta(days=30)
    assert_certificate_is_sound(issued, short.certificate_der)


def test_a_dsc_not_yet_valid_or_expired_signs_nothing() -> None:
    with pytest.raises(SigningError) as early:
        make_certificate(signer=SIGNER, now=TEST_NOW - timedelta(seconds=1))
    assert early.value.code == "DSC_NOT_YET_VALID"
    with pytest.raises(SigningError) as late:
        make_certificate(signer=SIGNER, now=TEST_NOW + timedelta(days=731))
    assert late.value.code == "DSC_EXPIRED"


def test_a_test_only_dsc_does_not_sign_vaccinations() -> None:
    tests_only = make_test_signer(types=frozenset({CertificateType.TEST}))
    with pytest.raises(SigningError) as caught:
        make_certificate(signer=tests_only)
    assert caught.value.code == "KEY_USAGE"


@pytest.mark.parametrize(
    "now",
    [datetime(2026, 1, 15, 3, 0), "2026-01-15T03:00:00Z", None, 1768446000],
)
def test_now_must_be_an_aware_datetime(now: Any) -> None:
    with pytest.raises(SigningError) as caught:
        issue(sample_name(), "1980", sample_vaccination(), signer=SIGNER, now=now)
    assert caught.value.code == "BAD_TIME"


def test_a_dose_in_the_future_is_refused() -> None:
    tomorrow_everywhere = (TEST_NOW + timedelta(days=2)).date()
    with pytest.raises(PayloadError) as caught:
        make_certificate(signer=SIGNER, vaccination=sample_vaccination(when=tomorrow_everywhere))
    assert caught.value.code == "DATE_IN_FUTURE"
    # Already the 15th in Kiribati (UTC+14) at 03:00 UTC: allowed.
    make_certificate(signer=SIGNER, vaccination=sample_vaccination(when=TEST_NOW.date()))


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"validity": timedelta(0)}, "BAD_VALIDITY"),
        ({"validity": 365}, "BAD_VALIDITY"),
        ({"country": "jp"}, "BAD_COUNTRY"),
        ({"country": "JPN"}, "BAD_COUNTRY"),
        ({"issuer": ""}, "BAD_NAME"),
        ({"issuer": "x" * 81}, "NAME_TOO_LONG"),
        ({"uvci": ""}, "BAD_UVCI"),
        ({"uvci": "U" * 81}, "BAD_UVCI"),
    ],
)
def test_bad_options_are_refused_with_a_code(kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises((PayloadError, SigningError)) as caught:
        issue(
            sample_name(), "1980-04-01", sample_vaccination(), signer=SIGNER, now=TEST_NOW, **kwargs
        )
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("dob", "code"),
    [
        ("1899-12-31", "BAD_DATE"),
        ("1980-02-30", "BAD_DATE"),
        ("1980-13", "BAD_DATE"),
        ("80-01-01", "BAD_DATE"),
        (19800101, "BAD_DATE"),
        ("2026-01-01", "BAD_DATE"),  # after the dose
    ],
)
def test_bad_birth_dates_are_refused(dob: Any, code: str) -> None:
    with pytest.raises(PayloadError) as caught:
        issue(sample_name(), dob, sample_vaccination(), signer=SIGNER, now=TEST_NOW)
    assert caught.value.code == code


@pytest.mark.parametrize("dob", ["1980", "1980-04", "1980-04-01", "", date(1980, 4, 1)])
def test_partial_and_empty_birth_dates_follow_the_schema(dob: Any) -> None:
    issued = issue(sample_name(), dob, sample_vaccination(), signer=SIGNER, now=TEST_NOW)
    assert issued.payload["dob"] == (dob.isoformat() if isinstance(dob, date) else dob)


def test_a_signer_returning_a_wrong_signature_is_caught() -> None:
    class Broken:
        kid = SIGNER.kid
        certificate_der = SIGNER.certificate_der
        algorithm = "ES256"

        def sign(self, data: bytes) -> bytes:
            return b"\x00" * 10

    with pytest.raises(SigningError) as caught:
        issue(sample_name(), "1980", sample_vaccination(), signer=Broken(), now=TEST_NOW)
    assert caught.value.code == "BAD_SIGNATURE"


def test_a_signer_with_another_algorithm_is_refused() -> None:
    class Rsa:
        kid = SIGNER.kid
        certificate_der = SIGNER.certificate_der
        algorithm = "PS256"

        def sign(self, data: bytes) -> bytes:  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(SigningError) as caught:
        issue(sample_name(), "1980", sample_vaccination(), signer=Rsa(), now=TEST_NOW)
    assert caught.value.code == "UNSUPPORTED_ALGORITHM"


def test_a_garbage_certificate_is_a_signing_error() -> None:
    class NoDsc:
        kid = b"12345678"
        certificate_der = b"\x30\x03\x02\x01\x00"
        algorithm = "ES256"

        def sign(self, data: bytes) -> bytes:  # pragma: no cover - never reached
            raise AssertionError

    with pytest.raises(SigningError) as caught:
        issue(sample_name(), "1980", sample_vaccination(), signer=NoDsc(), now=TEST_NOW)
    assert caught.value.code == "BAD_DSC"


# --- the schema ----------------------------------------------------------------------------


def test_issued_payloads_are_valid_against_the_published_schema(shared_dir: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency")
    schema = json.loads(
        (shared_dir / "conformance/dcc-schema/1.3.0.combined-schema.json").read_text()
    )
    validator = jsonschema.Draft202012Validator(schema)
    for name, dob, dose in [
        (sample_name(), "1980-04-01", 1),
        (HolderName("佐藤", "", "SATO", ""), "1950", 5),
        (HolderName("D'Arcy", "Anne-Marie", "DARCY", "ANNE<MARIE"), "", 3),
    ]:
        payload = make_certificate(
            signer=SIGNER, name=name, date_of_birth=dob, vaccination=sample_vaccination(dose)
        ).payload
        assert list(validator.iter_errors(payload)) == []


# --- round trips over names, dates and doses -------------------------------------------------

_KANJI = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
_KANA = st.characters(min_codepoint=0x30A1, max_codepoint=0x30F6)
_REGISTERED = st.text(st.one_of(_KANJI, _KANA), min_size=1, max_size=80)
_ICAO_PART = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=1, max_size=20)
_ICAO = st.lists(_ICAO_PART, min_size=1, max_size=4).map("<".join).filter(lambda s: len(s) <= 80)


@st.composite
def _names(draw: st.DrawFn) -> HolderName:
    family = draw(_REGISTERED)
    if draw(st.booleans()):
        return HolderName(family, "", draw(_ICAO), "")
    return HolderName(family, draw(_REGISTERED), draw(_ICAO), draw(_ICAO))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=_names(),
    dob=st.dates(min_value=date(1900, 1, 1), max_value=date(2021, 12, 31)),
    dose=st.integers(min_value=1, max_value=9),
    series=st.integers(min_value=1, max_value=3),
    day=st.dates(min_value=date(2022, 1, 1), max_value=TEST_NOW.date()),
)
def test_round_trip_over_names_dates_and_doses(
    name: HolderName, dob: date, dose: int, series: int, day: date
) -> None:
    vaccination = Vaccination(
        product="EU/1/21/1618",
        manufacturer="ORG-100032020",
        prophylaxis="1162643001",
        dose_number=dose,
        series_length=series,
        date=day,
    )
    issued = issue(name, dob, vaccination, signer=SIGNER, now=TEST_NOW)
    assert_certificate_is_sound(issued, SIGNER.certificate_der)
    assert issued.payload["nam"]["fn"] == name.family
    assert issued.payload["dob"] == dob.isoformat()
    assert issued.payload["v"][0]["dn"] == dose
    assert issued.payload["v"][0]["sd"] == max(dose, series)


@settings(max_examples=40, deadline=None)
@given(
    family=st.one_of(st.text(max_size=120), st.binary(max_size=10), st.none(), st.integers()),
    icao=st.one_of(st.text(max_size=90), st.none()),
)
def test_hostile_names_raise_only_payload_errors(family: Any, icao: Any) -> None:
    try:
        name = HolderName(family, "", icao, "")
    except PayloadError:
        return
    assert_certificate_is_sound(make_certificate(signer=SIGNER, name=name), SIGNER.certificate_der)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("dose_number", 0, "BAD_DOSE_NUMBER"),
        ("dose_number", 100, "BAD_DOSE_NUMBER"),
        ("dose_number", True, "BAD_DOSE_NUMBER"),
        ("dose_number", "2", "BAD_DOSE_NUMBER"),
        ("series_length", 0, "BAD_SERIES_LENGTH"),
        ("series_length", 10, "BAD_SERIES_LENGTH"),
        ("date", datetime(2025, 12, 20, tzinfo=UTC), "BAD_DATE"),
        ("date", "2025-12-20", "BAD_DATE"),
        ("product", "", "BAD_CODE"),
        ("product", "EU/1/20/1528\n", "BAD_CODE"),
        ("manufacturer", "x" * 81, "BAD_CODE"),
        ("prophylaxis", None, "BAD_CODE"),
        ("country", "Japan", "BAD_COUNTRY"),
        ("disease", "COVID 19", "BAD_CODE"),
    ],
)
def test_hostile_vaccination_fields_are_refused(field: str, value: Any, code: str) -> None:
    fields: dict[str, Any] = {
        "product": "EU/1/20/1528",
        "manufacturer": "ORG-100030215",
        "prophylaxis": "1119349007",
        "dose_number": 2,
        "series_length": 2,
        "date": date(2025, 12, 20),
    }
    fields[field] = value
    with pytest.raises(PayloadError) as caught:
        Vaccination(**fields)
    assert caught.value.code == code


def test_vaccination_payload_needs_its_typed_inputs() -> None:
    with pytest.raises(PayloadError) as caught:
        vaccination_payload({"fn": "x"}, "1980", sample_vaccination(), uvci="U")  # type: ignore[arg-type]
    assert caught.value.code == "BAD_INPUT"
    with pytest.raises(PayloadError):
        issue(sample_name(), "1980", "dose", signer=SIGNER, now=TEST_NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        lambda: HolderName("山田", "", "YAMADA\n", ""),
        lambda: HolderName("山田", "太郎", "YAMADA", "TARO\n"),
    ],
)
def test_a_trailing_newline_is_not_icao(name: Any) -> None:
    with pytest.raises(PayloadError) as caught:
        name()
    assert caught.value.code == "BAD_ICAO_NAME"


@pytest.mark.parametrize("dob", ["1980\n", "1980-04-01\n"])
def test_a_trailing_newline_is_not_a_birth_date(dob: str) -> None:
    with pytest.raises(PayloadError):
        issue(sample_name(), dob, sample_vaccination(), signer=SIGNER, now=TEST_NOW)
