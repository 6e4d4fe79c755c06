"""Flag rules: what a reviewer sees on records that are stored but need a second look."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from tests.conftest import NOW, World
from tests.vrs.dose_support import (
    EXPIRED_LOT,
    MODERNA_LOT,
    add_lots,
    add_resident,
    body,
    coupon_number,
    line,
)
from vrs.db.models import ProductIntervalRule, QualityFlag
from vrs.domain.refcache import IntervalRule, clear_reference_cache
from vrs.domain.reference import COMIRNATY, NUVAXOVID, SPIKEVAX, VAXZEVRIA
from vrs.domain.rules import (
    SeriesDose,
    add_months,
    age_in_months,
    applicable_interval_rule,
    reevaluate_series,
)


@pytest.fixture(autouse=True)
def _fresh_rules(world: World) -> Iterator[None]:
    add_lots(world)
    clear_reference_cache()
    yield
    clear_reference_cache()


def post(client: TestClient, world: World, **kw: Any) -> dict[str, Any]:
    answer = client.post("/v1/dose-records", json=body(**kw), headers=world.headers("site"))
    assert answer.status_code == 201, answer.json()
    return dict(answer.json())


def flags_by_dose(client: TestClient, world: World, serial: int = 1) -> dict[int, set[str]]:
    records = client.get(
        "/v1/dose-records", params={"coupon": line(serial)}, headers=world.headers("admin")
    ).json()["records"]
    return {r["dose_number"]: {f["rule_code"] for f in r["flags"]} for r in records}


def reevaluate(world: World, *serials: int) -> None:
    with world.session() as s:
        reevaluate_series(s, world.municipality, [coupon_number(n) for n in serials], NOW)
        s.commit()


# ---------------------------------------------------------------------------------------
# "n months after"


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2021, 8, 31), 1, date(2021, 10, 1)),  # 31 September does not exist
        (date(2022, 11, 30), 3, date(2023, 3, 1)),  # nor 30 February
        (date(2024, 1, 31), 1, date(2024, 3, 1)),  # 2024 is a leap year, still no 31 Feb
        (date(2023, 12, 29), 2, date(2024, 2, 29)),
        (date(2024, 2, 29), 12, date(2025, 3, 1)),
        (date(2022, 10, 21), 3, date(2023, 1, 21)),
        (date(2021, 12, 15), 8, date(2022, 8, 15)),
    ],
)
def test_add_months_follows_the_domain_definition(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))


@given(dates, st.integers(0, 240))
def test_add_months_is_the_same_day_or_the_first_of_the_next_month(d: date, n: int) -> None:
    result = add_months(d, n)
    months_moved = (result.year - d.year) * 12 + result.month - d.month
    if result.day == d.day:
        assert months_moved == n
    else:
        # The day does not exist in the target month: the 1st of the month after it.
        assert (result.day, months_moved) == (1, n + 1)
        assert d.day > 28


@given(dates, st.integers(0, 120), st.integers(0, 120))
def test_add_months_never_goes_backwards(d: date, a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert d <= add_months(d, low) <= add_months(d, high)


@given(dates)
def test_adding_zero_months_is_the_same_date(d: date) -> None:
    assert add_months(d, 0) == d


@given(dates, st.integers(0, 1200))
def test_age_in_months_is_the_largest_whole_month(birth: date, days: int) -> None:
    on = birth + timedelta(days=days)
    n = age_in_months(birth, on)
    assert add_months(birth, n) <= on < add_months(birth, n + 1)


# ---------------------------------------------------------------------------------------
# Date order and gaps


def test_a_second_dose_dated_before_the_first_flags_both(client: TestClient, world: World) -> None:
    post(client, world, dose=1, vaccinated_on="2023-05-01")
    second = post(client, world, dose=2, vaccinated_on="2023-04-01")
    assert {f["rule_code"] for f in second["flags"]} == {"DOSE_DATE_ORDER"}
    assert flags_by_dose(client, world) == {1: {"DOSE_DATE_ORDER"}, 2: {"DOSE_DATE_ORDER"}}


def test_two_doses_on_one_day_are_flagged(client: TestClient, world: World) -> None:
    post(client, world, dose=1, vaccinated_on="2023-05-01")
    post(client, world, dose=2, vaccinated_on="2023-05-01")
    assert flags_by_dose(client, world)[2] == {"DOSE_DATE_ORDER"}


def test_a_missing_dose_flags_the_gap_until_it_is_recorded(
    client: TestClient, world: World
) -> None:
    post(client, world, dose=1, vaccinated_on="2022-01-05")
    third = post(client, world, dose=3, vaccinated_on="2023-01-20")
    assert {f["rule_code"] for f in third["flags"]} == {"DOSE_NUMBER_GAP"}
    post(client, world, dose=2, vaccinated_on="2022-02-01")
    assert flags_by_dose(client, world) == {1: set(), 2: set(), 3: set()}
    with world.session() as s:
        gap = s.execute(select(QualityFlag)).scalar_one()
    assert gap.rule_code == "DOSE_NUMBER_GAP"
    assert gap.resolved_by == "system"
    assert gap.resolution == "rule no longer applies"
    assert gap.resolved_at == NOW


# ---------------------------------------------------------------------------------------
# Intervals


@pytest.mark.parametrize(
    ("product", "lot", "days", "flagged"),
    [
        (COMIRNATY, "FA1234", 18, True),
        (COMIRNATY, "FA1234", 19, False),
        (SPIKEVAX, MODERNA_LOT, 27, True),
        (SPIKEVAX, MODERNA_LOT, 28, False),
    ],
)
def test_the_primary_series_interval_is_counted_in_calendar_days(
    product: str, lot: str, days: int, flagged: bool, client: TestClient, world: World
) -> None:
    first = date(2023, 3, 1)
    post(client, world, dose=1, vaccinated_on=first.isoformat(), product=product, lot=lot)
    second = (first + timedelta(days=days)).isoformat()
    record = post(client, world, dose=2, vaccinated_on=second, product=product, lot=lot)
    assert ({f["rule_code"] for f in record["flags"]} == {"INTERVAL_TOO_SHORT"}) is flagged


@pytest.mark.parametrize(
    ("dose2", "dose3", "flagged"),
    [
        ("2022-10-21", "2023-01-20", True),  # 3 months from 2022-10-21: earliest 2023-01-21
        ("2022-10-21", "2023-01-21", False),
        ("2022-11-30", "2023-02-28", True),  # no 30 February: earliest 1 March
        ("2022-11-30", "2023-03-01", False),
        ("2022-05-01", "2022-10-20", False),  # 5 months, the rule in force on 2022-10-20
        ("2022-05-21", "2022-10-20", True),
        ("2021-04-01", "2021-12-01", False),  # 8 months in December 2021
        ("2021-04-02", "2021-12-01", True),
    ],
)
def test_the_booster_interval_is_the_rule_in_force_on_the_booster_date(
    dose2: str, dose3: str, flagged: bool, client: TestClient, world: World
) -> None:
    post(client, world, dose=1, vaccinated_on="2021-03-01")
    post(client, world, dose=2, vaccinated_on=dose2)
    record = post(client, world, dose=3, vaccinated_on=dose3)
    assert ("INTERVAL_TOO_SHORT" in {f["rule_code"] for f in record["flags"]}) is flagged


def test_the_pediatric_interval_applies_once_the_childs_age_is_known(
    client: TestClient, world: World
) -> None:
    post(client, world, dose=1, vaccinated_on="2022-12-01")
    post(client, world, dose=2, vaccinated_on="2023-01-01")
    # 56 days: enough for the 6-month-to-4-year series, short of the general 3 months.
    third = post(client, world, dose=3, vaccinated_on="2023-02-26")
    assert {f["rule_code"] for f in third["flags"]} == {"INTERVAL_TOO_SHORT"}
    add_resident(world, 1, birth_date=date(2020, 1, 10))
    reevaluate(world, 1)
    assert flags_by_dose(client, world) == {1: set(), 2: set(), 3: set()}


def test_a_pediatric_dose_too_early_is_flagged(client: TestClient, world: World) -> None:
    add_resident(world, 1, birth_date=date(2020, 1, 10))
    post(client, world, dose=1, vaccinated_on="2022-12-01")
    post(client, world, dose=2, vaccinated_on="2023-01-01")
    third = post(client, world, dose=3, vaccinated_on="2023-02-25")
    assert {f["rule_code"] for f in third["flags"]} == {"INTERVAL_TOO_SHORT"}


def test_a_new_rule_row_changes_the_threshold_from_its_effective_date(
    client: TestClient, world: World
) -> None:
    with world.session() as s:
        s.add(
            ProductIntervalRule(
                product_code=NUVAXOVID,
                dose_from=3,
                min_months=6,
                effective_from=date(2023, 1, 1),
                note="a stricter Nuvaxovid booster rule (test data)",
            )
        )
        s.commit()
    clear_reference_cache()
    for serial, product in ((1, NUVAXOVID), (2, COMIRNATY)):
        post(client, world, serial=serial, dose=1, vaccinated_on="2022-09-01", product=product)
        post(client, world, serial=serial, dose=2, vaccinated_on="2022-10-01", product=product)
        post(client, world, serial=serial, dose=3, vaccinated_on="2023-02-01", product=product)
    assert "INTERVAL_TOO_SHORT" in flags_by_dose(client, world, 1)[3]
    assert "INTERVAL_TOO_SHORT" not in flags_by_dose(client, world, 2)[3]


def _rule(**kw: Any) -> IntervalRule:
    fields: dict[str, Any] = {
        "id": 1,
        "product_code": None,
        "dose_from": 2,
        "dose_to": None,
        "min_days": 10,
        "min_months": None,
        "age_min_months": None,
        "age_max_months": None,
        "effective_from": date(2021, 1, 1),
        "effective_until": None,
        "note": "",
    }
    fields.update(kw)
    return IntervalRule(**fields)


def _dose(age_months: int | None) -> SeriesDose:
    on = date(2023, 1, 1)
    birth = None if age_months is None else add_months(on, -age_months)
    return SeriesDose(
        id=uuid.uuid4(),
        coupon_number="0000000013",
        dose_number=2,
        vaccinated_on=on,
        product_code=COMIRNATY,
        lot_number="L",
        lot_known=True,
        lot_expires_on=date(2030, 1, 1),
        birth_date=birth,
    )


def test_rule_precedence_product_then_age_bounds() -> None:
    general = _rule(id=1)
    aged_general = _rule(id=2, age_min_months=6, age_max_months=59)
    product = _rule(id=3, product_code=COMIRNATY)
    aged_product = _rule(id=4, product_code=COMIRNATY, age_min_months=6, age_max_months=59)
    other_product = _rule(id=5, product_code=SPIKEVAX)
    rules = [general, aged_general, product, aged_product, other_product]
    assert applicable_interval_rule(rules, _dose(24)) == aged_product
    assert applicable_interval_rule(rules, _dose(400)) == product
    assert applicable_interval_rule(rules, _dose(None)) == product
    assert applicable_interval_rule([general, aged_general], _dose(24)) == aged_general
    assert applicable_interval_rule([general, aged_general], _dose(None)) == general
    expired = _rule(id=6, product_code=COMIRNATY, effective_until=date(2022, 12, 31))
    assert applicable_interval_rule([general, expired], _dose(None)) == general


# ---------------------------------------------------------------------------------------
# Lots and ages


@pytest.mark.parametrize(
    ("lot", "product", "code"),
    [
        ("NEVER1", COMIRNATY, "LOT_UNKNOWN"),
        (MODERNA_LOT, COMIRNATY, "LOT_PRODUCT_MISMATCH"),
        (EXPIRED_LOT, COMIRNATY, "LOT_EXPIRED"),
    ],
)
def test_lot_problems_are_flagged(
    lot: str, product: str, code: str, client: TestClient, world: World
) -> None:
    record = post(client, world, lot=lot, product=product)
    assert {f["rule_code"] for f in record["flags"]} == {code}


def test_a_lot_used_on_its_expiry_day_is_fine(client: TestClient, world: World) -> None:
    record = post(client, world, lot=EXPIRED_LOT, vaccinated_on="2022-01-31")
    assert record["flags"] == []


def test_age_outside_the_products_range_is_flagged_once_the_resident_is_known(
    client: TestClient, world: World
) -> None:
    pending = post(client, world, product=VAXZEVRIA, lot="AZ0001", vaccinated_on="2023-05-01")
    assert {f["rule_code"] for f in pending["flags"]} == {"LOT_UNKNOWN"}
    add_resident(world, 1, birth_date=date(2013, 5, 2))  # ten years old
    reevaluate(world, 1)
    assert flags_by_dose(client, world)[1] == {"LOT_UNKNOWN", "AGE_OUT_OF_RANGE"}


def test_an_adult_within_the_range_is_not_flagged(client: TestClient, world: World) -> None:
    add_resident(world, 1, birth_date=date(1950, 1, 1))
    record = post(client, world, lot="FA1234")
    assert record["flags"] == []


def test_an_infant_under_six_months_is_flagged(client: TestClient, world: World) -> None:
    add_resident(world, 1, birth_date=date(2022, 11, 2))  # 5 months 29 days on 2023-05-01
    record = post(client, world, lot="FA1234")
    assert {f["rule_code"] for f in record["flags"]} == {"AGE_OUT_OF_RANGE"}


# ---------------------------------------------------------------------------------------
# Re-evaluation


def test_reevaluation_neither_duplicates_flags_nor_touches_conflicts(
    client: TestClient, world: World
) -> None:
    post(client, world, lot="NEVER1")
    conflict = client.post(
        "/v1/dose-records", json=body(lot="NEVER2"), headers=world.headers("site")
    )
    assert conflict.status_code == 409
    for _ in range(3):
        reevaluate(world, 1)
    with world.session() as s:
        flags = s.execute(select(QualityFlag.rule_code, QualityFlag.resolved_at)).all()
    assert sorted(flags) == [("CONFLICT", None), ("LOT_UNKNOWN", None)]
