"""Check digits the scanner validates before it accepts a read (DOMAIN.md).

These duplicate ``vrs.domain.checkdigits`` on purpose: ``scanner`` runs on site tablets and
may import nothing internal (ARCHITECTURE.md), yet it must refuse a misread before it reaches
the outbox. ``tests/scanner/test_checkdigits.py`` holds both implementations to the same answers.
"""

from __future__ import annotations

__all__ = [
    "damm_check_digit",
    "gtin_check_digit",
    "is_valid_damm",
    "is_valid_gtin",
    "is_valid_municipality_code",
    "municipality_check_digit",
]

# Damm's weakly totally anti-symmetric quasigroup of order 10 (Damm, 2004).
_DAMM = (
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


def _digits(text: str, length: int | None = None) -> bool:
    return text.isascii() and text.isdigit() and (length is None or len(text) == length)


def damm_check_digit(digits: str) -> int:
    """The Damm check digit of a non-empty string of ASCII digits."""
    if not _digits(digits):
        raise ValueError("Damm check digits are defined over ASCII digits")
    state = 0
    for d in digits:
        state = _DAMM[state][ord(d) - 48]
    return state


def is_valid_damm(number: str) -> bool:
    """True when the last digit is the Damm check digit of the digits before it."""
    return len(number) >= 2 and _digits(number) and damm_check_digit(number) == 0


def municipality_check_digit(first5: str) -> int:
    """Weights 6,5,4,3,2 on digits 1-5; r = sum mod 11; check = (11 - r) mod 10."""
    if not _digits(first5, 5):
        raise ValueError("a municipality code body is 5 ASCII digits")
    remainder = sum(int(d) * w for d, w in zip(first5, (6, 5, 4, 3, 2), strict=True)) % 11
    return (11 - remainder) % 10


def is_valid_municipality_code(code: str) -> bool:
    """Six digits, prefecture 01-47, right check digit."""
    return (
        _digits(code, 6)
        and 1 <= int(code[:2]) <= 47
        and municipality_check_digit(code[:5]) == int(code[5])
    )


def gtin_check_digit(body: str) -> int:
    """GS1 mod-10 check digit: weights 3,1,3,... from the rightmost body digit."""
    if not _digits(body) or not body:
        raise ValueError("a GTIN body is ASCII digits")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gtin(gtin: str) -> bool:
    """A GTIN-8/12/13/14 whose last digit is its GS1 check digit."""
    return (
        len(gtin) in (8, 12, 13, 14)
        and _digits(gtin)
        and gtin_check_digit(gtin[:-1]) == int(gtin[-1])
    )
