"""Check digits of the identifiers in DOMAIN.md: municipality code, My Number, Damm coupons."""

from __future__ import annotations

import functools

# Damm's weakly totally anti-symmetric quasigroup of order 10 (Damm, 2004): a single
# table lookup per digit catches every single-digit error and every adjacent swap.
_DAMM_TABLE = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def _is_digits(text: str, length: int) -> bool:
    return len(text) == length and text.isascii() and text.isdigit()


def municipality_check_digit(first5: str) -> int:
    """Check digit of a local-government code: weights 6..2, r = sum mod 11, (11 - r) mod 10."""
    if not _is_digits(first5, 5):
        raise ValueError("a municipality code body is 5 ASCII digits")
    remainder = sum(int(d) * w for d, w in zip(first5, (6, 5, 4, 3, 2), strict=True)) % 11
    return (11 - remainder) % 10


@functools.lru_cache(maxsize=4096)  # every post checks one of 1,741 codes
def is_valid_municipality_code(code: str) -> bool:
    """True for a 6-digit code whose check digit is right and whose prefecture is 01-47."""
    if not _is_digits(code, 6):
        return False
    if not 1 <= int(code[:2]) <= 47:
        return False
    return municipality_check_digit(code[:5]) == int(code[5])


def my_number_check_digit(first11: str) -> int:
    """Check digit of a 12-digit individual number (My Number) from its first 11 digits."""
    if not _is_digits(first11, 11):
        raise ValueError("a My Number body is 11 ASCII digits")
    total = 0
    for n in range(1, 12):
        p = int(first11[11 - n])
        q = n + 1 if n <= 6 else n - 5
        total += p * q
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_valid_my_number(number: str) -> bool:
    return _is_digits(number, 12) and my_number_check_digit(number[:11]) == int(number[11])


def damm_check_digit(digits: str) -> int:
    """The Damm check digit of a string of ASCII digits."""
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("Damm check digits are defined over ASCII digits")
    interim = 0
    for d in digits:
        interim = _DAMM_TABLE[interim][int(d)]
    return interim


def is_valid_damm(digits: str) -> bool:
    """True when the last digit is the Damm check digit of the ones before it."""
    return (
        len(digits) >= 2
        and digits.isascii()
        and digits.isdigit()
        and (damm_check_digit(digits) == 0)
    )


def make_damm_coupon_number(serial: int) -> str:
    """A 10-digit coupon number: the 9-digit serial followed by its Damm check digit."""
    if not 0 <= serial <= 999_999_999:
        raise ValueError("a coupon serial has at most 9 digits")
    body = f"{serial:09d}"
    return body + str(damm_check_digit(body))
