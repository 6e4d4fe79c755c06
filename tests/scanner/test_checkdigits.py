"""The scanner's check digits agree with the record service's (the duplication is forced:
``scanner`` may import nothing internal), and reject what they must."""

from __future__ import annotations

import random

import pytest

from scanner import checkdigits as ours
from vrs.domain import checkdigits as service


def test_damm_and_municipality_agree_with_the_service() -> None:
    rng = random.Random(1)
    for _ in range(3000):
        body = f"{rng.randrange(10**9):09d}"
        assert ours.damm_check_digit(body) == service.damm_check_digit(body)
        number = body + str(rng.randrange(10))
        assert ours.is_valid_damm(number) == service.is_valid_damm(number)
        code = f"{rng.randrange(10**6):06d}"
        assert ours.is_valid_municipality_code(code) == service.is_valid_municipality_code(code)


@pytest.mark.parametrize("code", ["131016", "131041", "131130", "271004", "011002"])
def test_domain_examples(code: str) -> None:
    assert ours.is_valid_municipality_code(code)


def test_damm_catches_every_single_error_and_adjacent_swap() -> None:
    number = "1234567894"
    assert ours.is_valid_damm(number)
    for i in range(10):
        for d in "0123456789":
            if d != number[i]:
                assert not ours.is_valid_damm(number[:i] + d + number[i + 1 :])
    for i in range(9):
        swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
        if swapped != number:
            assert not ours.is_valid_damm(swapped)


@pytest.mark.parametrize(
    ("gtin", "valid"),
    [("04987123456784", True), ("04987123456782", False), ("4987123456784", True),
     ("96385074", True), ("036000291452", True), ("0498712345671", False), ("", False),
     ("0498712345678X", False)],
)  # fmt: skip
def test_gtin_check_digit(gtin: str, valid: bool) -> None:
    assert ours.is_valid_gtin(gtin) is valid


@pytest.mark.parametrize("bad", ["", "12a45", "１２３４５"])
def test_bad_bodies_raise(bad: str) -> None:
    with pytest.raises(ValueError):
        ours.municipality_check_digit(bad)
    with pytest.raises(ValueError):
        ours.damm_check_digit(bad)
