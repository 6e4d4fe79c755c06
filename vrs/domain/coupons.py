"""The coupon's 18-digit line: ticket type, dose number, municipality code, coupon number.

``1 2 131016 0000000017`` reads: vaccination ticket (1), dose 2, municipality 131016,
coupon number 0000000017. Parsing checks the structure and the municipality check digit;
the coupon number's Damm digit depends on the municipality's coupon format, so it is
checked separately by :func:`check_coupon_number` once the municipality is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from vrs.domain.checkdigits import is_valid_damm, is_valid_municipality_code
from vrs.domain.errors import Unprocessable

LINE_LENGTH = 18
COUPON_NUMBER_LENGTH = 10


class TicketType(IntEnum):
    VACCINATION = 1
    SCREENING_ONLY = 2


@dataclass(frozen=True)
class CouponLine:
    """A parsed 18-digit coupon line."""

    ticket_type: TicketType
    dose_number: int
    municipality_code: str
    coupon_number: str

    def __str__(self) -> str:
        return (
            f"{self.ticket_type.value}{self.dose_number}"
            f"{self.municipality_code}{self.coupon_number}"
        )


def _is_ascii_digits(text: str, length: int) -> bool:
    return len(text) == length and text.isascii() and text.isdigit()


def parse_coupon_line(text: str, *, require_vaccination: bool = True) -> CouponLine:
    """Parse an 18-digit line or raise :class:`Unprocessable`.

    Codes: ``MALFORMED_COUPON`` (not 18 ASCII digits, unknown ticket type, dose number 0),
    ``TICKET_NOT_VACCINATION`` (a screening-only ticket, when ``require_vaccination``),
    ``BAD_MUNICIPALITY_CHECK_DIGIT``.
    """
    if not _is_ascii_digits(text, LINE_LENGTH):
        raise Unprocessable("MALFORMED_COUPON", "a coupon line is 18 ASCII digits")
    ticket_digit, dose_digit = int(text[0]), int(text[1])
    if ticket_digit not in TicketType._value2member_map_:
        raise Unprocessable("MALFORMED_COUPON", f"ticket type {ticket_digit} does not exist")
    ticket = TicketType(ticket_digit)
    if require_vaccination and ticket is not TicketType.VACCINATION:
        raise Unprocessable(
            "TICKET_NOT_VACCINATION", "this is a screening-only ticket; no dose can be recorded"
        )
    if dose_digit == 0:
        raise Unprocessable("MALFORMED_COUPON", "the dose number on a coupon is 1-9")
    municipality_code = text[2:8]
    if not is_valid_municipality_code(municipality_code):
        raise Unprocessable(
            "BAD_MUNICIPALITY_CHECK_DIGIT",
            f"{municipality_code} is not a municipality code (check digit or prefecture wrong)",
        )
    return CouponLine(
        ticket_type=ticket,
        dose_number=dose_digit,
        municipality_code=municipality_code,
        coupon_number=text[8:],
    )


def check_coupon_number(coupon_number: str, coupon_format: str) -> None:
    """Raise ``BAD_COUPON_CHECK_DIGIT`` when a ``damm`` municipality's number fails its check.

    ``legacy`` municipalities printed numbers without a check digit, so any 10 digits pass.
    """
    if coupon_format == "damm" and not is_valid_damm(coupon_number):
        raise Unprocessable(
            "BAD_COUPON_CHECK_DIGIT",
            "the coupon number's check digit is wrong (a misread digit?); scan it again",
        )


def is_coupon_number(text: str) -> bool:
    """True for 10 ASCII digits."""
    return _is_ascii_digits(text, COUPON_NUMBER_LENGTH)
