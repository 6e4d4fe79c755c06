"""My Number (個人番号): check-digit validation and the keyed hash that is all we keep.

The number itself is never stored, returned, logged or echoed in an error message: callers
validate it with :func:`is_valid_my_number` and keep only :func:`my_number_hmac` of it.
"""

from __future__ import annotations

import hmac

#: Weights of the first 11 digits read left to right (DOMAIN.md reads them from the right:
#: P1 is the 11th digit with Q1 = 2, ..., P6 -> 7, then P7 -> 2, ..., P11 -> 6).
_WEIGHTS = tuple((n + 1 if n <= 6 else n - 5) for n in range(11, 0, -1))
#: ``ord("0")`` times the weight sum: subtracting it turns a sum over bytes into one over digits.
_ASCII_ZERO_OFFSET = ord("0") * sum(_WEIGHTS)


def is_valid_my_number(number: str) -> bool:
    """True for 12 ASCII digits whose last digit is the My Number check digit.

    Equivalent to :func:`vrs.domain.checkdigits.is_valid_my_number`, written for the
    import loop (one ``sum`` over bytes instead of a Python loop over characters).
    """
    if len(number) != 12 or not number.isascii() or not number.isdigit():
        return False
    raw = number.encode("ascii")
    remainder = (sum(map(int.__mul__, raw[:11], _WEIGHTS)) - _ASCII_ZERO_OFFSET) % 11
    return raw[11] - 48 == (0 if remainder <= 1 else 11 - remainder)


def my_number_hmac(key: bytes, number: str) -> str:
    """HMAC-SHA-256 (lower-case hex) of a My Number under the service's secret key.

    The same number always gives the same hash under one key, so residents who moved can be
    matched across municipalities without the number being stored anywhere.
    """
    return hmac.digest(key, number.encode("ascii"), "sha256").hex()
