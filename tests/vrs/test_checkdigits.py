"""Check digits of DOMAIN.md, against its examples and by their defining properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrs.domain.checkdigits import (
    damm_check_digit,
    is_valid_damm,
    is_valid_municipality_code,
    is_valid_my_number,
    make_damm_coupon_number,
    municipality_check_digit,
    my_number_check_digit,
)

digits = st.text(alphabet="0123456789", min_size=1, max_size=12)


@pytest.mark.parametrize("code", ["131016", "131041", "131130", "271004", "011002"])
def test_domain_examples_of_municipality_codes_are_valid(code: str) -> None:
    assert is_valid_municipality_code(code)


@pytest.mark.parametrize(
    "code",
    ["131017", "13101", "1310166", "481003", "001007", "13101a", "１３１０１６"],
)
def test_wrong_municipality_codes_are_refused(code: str) -> None:
    assert not is_valid_municipality_code(code)


def test_municipality_check_digit_remainders_zero_and_one() -> None:
    # r = 0 -> 1 and r = 1 -> 0: "the last digit of 11 - r".
    bodies = {
        sum(int(d) * w for d, w in zip(f"{n:05d}", (6, 5, 4, 3, 2), strict=True)) % 11: f"{n:05d}"
        for n in range(10000, 10200)
    }
    assert municipality_check_digit(bodies[0]) == 1
    assert municipality_check_digit(bodies[1]) == 0


def test_my_number_domain_example() -> None:
    assert is_valid_my_number("123456789018")
    assert not is_valid_my_number("123456789019")
    assert not is_valid_my_number("12345678901")


def _my_number_remainder(body: str) -> int:
    return sum(int(body[11 - n]) * (n + 1 if n <= 6 else n - 5) for n in range(1, 12)) % 11


@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.data())
def test_my_number_single_digit_errors_are_detected(body: str, data: st.DataObject) -> None:
    number = body + str(my_number_check_digit(body))
    assert is_valid_my_number(number)
    i = data.draw(st.integers(0, 10))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != number[i]]))
    changed = number[:i] + wrong + number[i + 1 :]
    # Weights 2..7 are invertible mod 11, so the remainder always moves; only a move between
    # remainders 0 and 1 (both give check digit 0) goes unseen - a property of the scheme.
    remainders = {_my_number_remainder(body), _my_number_remainder(changed[:11])}
    assert is_valid_my_number(changed) == (remainders == {0, 1})


@given(digits)
def test_damm_accepts_its_own_check_digit(body: str) -> None:
    assert is_valid_damm(body + str(damm_check_digit(body)))


@given(st.text(alphabet="0123456789", min_size=2, max_size=12), st.data())
def test_damm_detects_every_single_digit_error(body: str, data: st.DataObject) -> None:
    number = body + str(damm_check_digit(body))
    i = data.draw(st.integers(0, len(number) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != number[i]]))
    assert not is_valid_damm(number[:i] + wrong + number[i + 1 :])


@given(st.text(alphabet="0123456789", min_size=2, max_size=12), st.data())
def test_damm_detects_every_adjacent_swap(body: str, data: st.DataObject) -> None:
    number = body + str(damm_check_digit(body))
    i = data.draw(st.integers(0, len(number) - 2))
    if number[i] == number[i + 1]:
        return
    swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    assert not is_valid_damm(swapped)


@pytest.mark.parametrize(("good", "bad"), [("1", "4"), ("4", "1"), ("5", "3"), ("3", "8")])
def test_damm_catches_the_2021_ocr_confusions(good: str, bad: str) -> None:
    for serial in range(0, 100_000, 997):
        number = make_damm_coupon_number(serial)
        for i, ch in enumerate(number):
            if ch == good:
                assert not is_valid_damm(number[:i] + bad + number[i + 1 :])


def test_coupon_numbers_are_ten_digits() -> None:
    assert make_damm_coupon_number(0) == "0000000000"
    assert len(make_damm_coupon_number(999_999_999)) == 10
    with pytest.raises(ValueError):
        make_damm_coupon_number(1_000_000_000)
