"""CertLogic: the business-rule language of the EU DCC, evaluated and validated.

CertLogic is a JsonLogic subset with date-time operations (``plusTime``, ``after``, …) and two
DCC-specific helpers (``extractFromUVCI``, ``dccDateOfBirth``). This is our own implementation of
the published specification; the specification's test suites run against it in
``tests/verifier/test_certlogic.py``.

- :func:`evaluate` gives an expression's value for a data context, or raises
  :class:`CertLogicError` (a rule that errors is "could not decide", never true or false).
- :func:`validate` lists the structural problems of an expression without evaluating it.

Values are JSON values plus :class:`datetime.datetime` (the result of ``plusTime`` and
``dccDateOfBirth``). Evaluation depth is bounded, so a hostile rule cannot exhaust the stack.
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from verifier.errors import VerifierError

__all__ = ["CertLogicError", "Issue", "evaluate", "is_truthy", "parse_datetime", "validate"]

MAX_DEPTH = 64

_PATH = re.compile(r"^$|^[^.]+(\.[^.]+)*$")
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$"
)
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
_UVCI_SEPARATORS = re.compile(r"[/#:]")
_UVCI_PREFIX = "URN:UVCI:"


class CertLogicError(VerifierError):
    """An expression could not be evaluated (bad operands, unknown operator, invalid date)."""

    def __init__(self, message: str) -> None:
        super().__init__("RULE_EVALUATION_ERROR", message)


@dataclass(frozen=True, slots=True)
class Issue:
    """One structural problem of an expression: the offending sub-expression and why."""

    expr: Any
    message: str


def is_truthy(value: Any) -> bool:
    """JavaScript-style truthiness as CertLogic defines it (empty object and array are falsy)."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True  # date-times


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC instant; a zone-less value is UTC.

    Partial dates (``YYYY``, ``YYYY-MM``) mean the last day of that year or month, as the
    CertLogic specification has it for dates of birth.
    """
    partial = _PARTIAL_DATE.match(text)
    if partial:
        year = int(partial.group(1))
        month = int(partial.group(2) or 12)
        if not 1 <= month <= 12:
            raise CertLogicError(f"not a valid date: {text!r}")
        return datetime(year, month, calendar.monthrange(year, month)[1], tzinfo=UTC)
    match = _DATE_TIME.match(text)
    if match is None:
        raise CertLogicError(f"not a valid date-time: {text!r}")
    fields = match.groups()
    fraction, zone = fields[6], fields[7]
    y, mo, d, h, mi, s = (int(part or 0) for part in fields[:6])
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        value = datetime(y, mo, d, h, mi, s, micro, tzinfo=UTC)
    except ValueError as exc:
        raise CertLogicError(f"not a valid date-time: {text!r}") from exc
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        value -= sign * offset
    return value


def _plus_months(value: datetime, months: int) -> datetime:
    # Like JavaScript's setUTCMonth: a day that does not exist rolls over into the next month.
    total = value.year * 12 + (value.month - 1) + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise CertLogicError("plusTime result out of range")
    first = value.replace(year=year, month=month + 1, day=1)
    return first + timedelta(days=value.day - 1)


def _plus_time(operand: Any, amount: Any, unit: Any) -> datetime:
    if not isinstance(operand, str):
        raise CertLogicError("plusTime needs a date-time string as first operand")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise CertLogicError("plusTime needs an integer amount")
    base = parse_datetime(operand)
    try:
        if unit == "year":
            return _plus_months(base, 12 * amount)
        if unit == "month":
            return _plus_months(base, amount)
        if unit == "day":
            return base + timedelta(days=amount)
        if unit == "hour":
            return base + timedelta(hours=amount)
    except OverflowError as exc:
        raise CertLogicError("plusTime result out of range") from exc
    raise CertLogicError(f"plusTime unit must be year, month, day or hour, not {unit!r}")


def _dcc_date_of_birth(operand: Any) -> datetime:
    if not isinstance(operand, str) or operand == "":
        raise CertLogicError("dccDateOfBirth needs a non-empty date string")
    return parse_datetime(operand[:10])


def _extract_from_uvci(operand: Any, index: Any) -> str | None:
    if not isinstance(index, int) or isinstance(index, bool):
        raise CertLogicError("extractFromUVCI needs an integer index")
    if operand is None:
        return None
    if not isinstance(operand, str):
        raise CertLogicError("extractFromUVCI needs a string or null operand")
    text = operand[len(_UVCI_PREFIX) :] if operand.startswith(_UVCI_PREFIX) else operand
    fragments = _UVCI_SEPARATORS.split(text)
    return fragments[index] if 0 <= index < len(fragments) else None


def _strict_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    if type(left) is not type(right) and not (
        isinstance(left, int | float) and isinstance(right, int | float)
    ):
        return False
    return bool(left == right)


def _compare(operator: str, values: list[Any]) -> bool:
    if len(values) not in (2, 3):
        raise CertLogicError(f"{operator} needs 2 or 3 operands")
    kinds = {type(v) for v in values}
    if not (kinds <= {int} or kinds <= {datetime}):
        raise CertLogicError(f"{operator} compares integers or date-times, all of one kind")
    test: Callable[[Any, Any], bool] = _COMPARISONS[operator]
    return all(test(a, b) for a, b in itertools.pairwise(values))


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "before": lambda a, b: a < b,
    "after": lambda a, b: a > b,
    "not-after": lambda a, b: a <= b,
    "not-before": lambda a, b: a >= b,
}
_DATE_COMPARISONS = frozenset({"before", "after", "not-after", "not-before"})


def _var(path: Any, data: Any) -> Any:
    if not isinstance(path, str):
        raise CertLogicError('not of the form { "var": "<path>" }')
    if path == "":
        return data
    value = data
    for part in path.split("."):
        if value is None:
            return None
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else None
        else:
            return None
    return value


def evaluate(expr: Any, data: Any) -> Any:
    """The value of a CertLogic expression for a data context."""
    return _evaluate(expr, data, 0)


def _evaluate(expr: Any, data: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CertLogicError("expression nested too deeply")
    if isinstance(expr, str | bool | int) or expr is None:
        return expr
    if isinstance(expr, float):
        if expr.is_integer():
            return int(expr)
        raise CertLogicError(f"{expr} is a non-integer number")
    if isinstance(expr, list):
        return [_evaluate(item, data, depth + 1) for item in expr]
    if not isinstance(expr, dict) or len(expr) != 1:
        raise CertLogicError("invalid CertLogic expression")
    ((operator, operands),) = expr.items()
    if operator == "var":
        return _var(operands, data)
    if not isinstance(operands, list):
        raise CertLogicError('operation not of the form { "<operator>": [ <values...> ] }')
    return _operate(operator, operands, data, depth + 1)


def _operate(operator: str, operands: list[Any], data: Any, depth: int) -> Any:
    def ev(item: Any) -> Any:
        return _evaluate(item, data, depth)

    if operator == "if":
        _arity(operator, operands, 3)
        return ev(operands[1]) if is_truthy(ev(operands[0])) else ev(operands[2])
    if operator == "and":
        if len(operands) < 2:
            raise CertLogicError("and needs at least 2 operands")
        value: Any = None
        for item in operands:
            value = ev(item)
            if not is_truthy(value):
                return value
        return value
    if operator == "!":
        _arity(operator, operands, 1)
        return not is_truthy(ev(operands[0]))
    if operator == "===":
        _arity(operator, operands, 2)
        return _strict_equal(ev(operands[0]), ev(operands[1]))
    if operator == "in":
        _arity(operator, operands, 2)
        needle, haystack = ev(operands[0]), ev(operands[1])
        if not isinstance(haystack, list):
            raise CertLogicError("in needs an array as second operand")
        return any(_strict_equal(needle, item) for item in haystack)
    if operator == "+":
        values = [ev(item) for item in operands]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise CertLogicError("+ adds integers only")
        return sum(values)
    if operator in _COMPARISONS:
        values = [ev(item) for item in operands]
        if operator in _DATE_COMPARISONS and not all(isinstance(v, datetime) for v in values):
            raise CertLogicError(f"{operator} compares date-times only")
        return _compare(operator, values)
    if operator == "plusTime":
        _arity(operator, operands, 3)
        return _plus_time(ev(operands[0]), operands[1], operands[2])
    if operator == "reduce":
        return _reduce(operands, data, depth)
    if operator == "extractFromUVCI":
        _arity(operator, operands, 2)
        return _extract_from_uvci(ev(operands[0]), operands[1])
    if operator == "dccDateOfBirth":
        _arity(operator, operands, 1)
        return _dcc_date_of_birth(ev(operands[0]))
    raise CertLogicError(f'unrecognised operator: "{operator}"')


def _reduce(operands: list[Any], data: Any, depth: int) -> Any:
    _arity("reduce", operands, 3)
    items = _evaluate(operands[0], data, depth)
    accumulator = _evaluate(operands[2], data, depth)
    if items is None:
        return accumulator
    if not isinstance(items, list):
        raise CertLogicError("reduce needs an array or null as first operand")
    for item in items:
        context = {"current": item, "accumulator": accumulator, "data": data}
        accumulator = _evaluate(operands[1], context, depth)
    return accumulator


def _arity(operator: str, operands: list[Any], count: int) -> None:
    if len(operands) != count:
        raise CertLogicError(f"{operator} needs exactly {count} operands, got {len(operands)}")


_OPERAND_COUNTS: dict[str, tuple[int, int | None]] = {
    "if": (3, 3),
    "and": (2, None),
    "!": (1, 1),
    "===": (2, 2),
    "in": (2, 2),
    "+": (2, None),
    "<": (2, 3),
    ">": (2, 3),
    "<=": (2, 3),
    ">=": (2, 3),
    "before": (2, 3),
    "after": (2, 3),
    "not-after": (2, 3),
    "not-before": (2, 3),
    "plusTime": (3, 3),
    "reduce": (3, 3),
    "extractFromUVCI": (2, 2),
    "dccDateOfBirth": (1, 1),
}


def validate(expr: Any) -> list[Issue]:
    """Every structural problem of ``expr``, outermost first; ``[]`` when it is well-formed."""
    issues: list[Issue] = []
    _validate(expr, issues, 0)
    return issues


def _validate(expr: Any, issues: list[Issue], depth: int) -> None:
    if depth > MAX_DEPTH:
        issues.append(Issue(expr, "expression nested too deeply"))
        return
    if isinstance(expr, str | bool | int):
        return
    if isinstance(expr, float):
        if not expr.is_integer():
            issues.append(Issue(expr, f"{expr} is a non-integer number"))
        return
    if isinstance(expr, list):
        for item in expr:
            _validate(item, issues, depth + 1)
        return
    if not isinstance(expr, dict):
        issues.append(Issue(expr, "invalid CertLogic expression"))
        return
    if len(expr) != 1:
        issues.append(
            Issue(expr, f"expression object must have exactly one key, but it has {len(expr)}")
        )
        return
    ((operator, operands),) = expr.items()
    if operator == "var":
        if not isinstance(operands, str):
            issues.append(Issue(expr, 'not of the form { "var": "<path>" }'))
        elif not _PATH.match(operands):
            issues.append(Issue(expr, f"data access path doesn't have a valid format: {operands}"))
        return
    if not isinstance(operands, list):
        issues.append(Issue(expr, 'operation not of the form { "<operator>": [ <values...> ] }'))
        return
    if operator not in _OPERAND_COUNTS:
        issues.append(Issue(expr, f'unrecognised operator: "{operator}"'))
        return
    low, high = _OPERAND_COUNTS[operator]
    if len(operands) < low or (high is not None and len(operands) > high):
        issues.append(Issue(expr, f"{operator} has {len(operands)} operands"))
    for item in operands:
        _validate(item, issues, depth + 1)
