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
import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from verifier.errors import VerifierError

__all__ = [
    "CertLogicError",
    "Compiled",
    "Issue",
    "compile_expression",
    "evaluate",
    "is_truthy",
    "parse_datetime",
    "validate",
]

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


@functools.lru_cache(maxsize=1024)
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


Compiled = Callable[[Any], Any]


def evaluate(expr: Any, data: Any) -> Any:
    """The value of a CertLogic expression for a data context."""
    return compile_expression(expr)(data)


def compile_expression(expr: Any) -> Compiled:
    """``expr`` turned once into nested closures: calling the result with a data context
    evaluates it. Structural problems raise :class:`CertLogicError` only when (and if) the
    faulty part is reached, exactly as evaluation does; operands are evaluated lazily."""
    return _compile(expr, 0)


def _raises(message: str) -> Compiled:
    def fail(data: Any) -> Any:
        raise CertLogicError(message)

    return fail


def _constant(value: Any) -> Compiled:
    return lambda data: value


def _compile(expr: Any, depth: int) -> Compiled:
    if depth > MAX_DEPTH:
        return _raises("expression nested too deeply")
    if isinstance(expr, str | bool | int) or expr is None:
        return _constant(expr)
    if isinstance(expr, float):
        if expr.is_integer():
            return _constant(int(expr))
        return _raises(f"{expr} is a non-integer number")
    if isinstance(expr, list):
        items = [_compile(item, depth + 1) for item in expr]
        return lambda data: [item(data) for item in items]
    if not isinstance(expr, dict) or len(expr) != 1:
        return _raises("invalid CertLogic expression")
    ((operator, operands),) = expr.items()
    if operator == "var":
        return _compile_var(operands)
    if not isinstance(operands, list):
        return _raises('operation not of the form { "<operator>": [ <values...> ] }')
    builder = _OPERATORS.get(operator)
    if builder is None:
        return _raises(f'unrecognised operator: "{operator}"')
    low, high = _OPERAND_COUNTS[operator]
    if len(operands) < low or (high is not None and len(operands) > high):
        return _raises(f"{operator} has {len(operands)} operands")
    return builder(operator, operands, depth + 1)


def _compile_var(path: Any) -> Compiled:
    if not isinstance(path, str):
        return _raises('not of the form { "var": "<path>" }')
    if path == "":
        return lambda data: data
    parts = [(part, int(part) if part.isdigit() else None) for part in path.split(".")]

    def var(data: Any) -> Any:
        value = data
        for key, index in parts:
            if isinstance(value, dict):
                value = value.get(key)
            elif isinstance(value, list) and index is not None:
                value = value[index] if index < len(value) else None
            else:
                return None
        return value

    return var


def _if(operator: str, operands: list[Any], depth: int) -> Compiled:
    guard, then, otherwise = (_compile(item, depth) for item in operands)
    return lambda data: then(data) if is_truthy(guard(data)) else otherwise(data)


def _and(operator: str, operands: list[Any], depth: int) -> Compiled:
    items = [_compile(item, depth) for item in operands]

    def conjunction(data: Any) -> Any:
        value: Any = None
        for item in items:
            value = item(data)
            if not is_truthy(value):
                return value
        return value

    return conjunction


def _not(operator: str, operands: list[Any], depth: int) -> Compiled:
    operand = _compile(operands[0], depth)
    return lambda data: not is_truthy(operand(data))


def _equal(operator: str, operands: list[Any], depth: int) -> Compiled:
    left, right = (_compile(item, depth) for item in operands)
    return lambda data: _strict_equal(left(data), right(data))


def _in(operator: str, operands: list[Any], depth: int) -> Compiled:
    needle, haystack = (_compile(item, depth) for item in operands)

    def contains(data: Any) -> bool:
        value, items = needle(data), haystack(data)
        if not isinstance(items, list):
            raise CertLogicError("in needs an array as second operand")
        return any(_strict_equal(value, item) for item in items)

    return contains


def _plus(operator: str, operands: list[Any], depth: int) -> Compiled:
    items = [_compile(item, depth) for item in operands]

    def add(data: Any) -> int:
        values = [item(data) for item in items]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise CertLogicError("+ adds integers only")
        return sum(values)

    return add


def _comparison(operator: str, operands: list[Any], depth: int) -> Compiled:
    items = [_compile(item, depth) for item in operands]
    dates_only = operator in _DATE_COMPARISONS

    def compare(data: Any) -> bool:
        values = [item(data) for item in items]
        if dates_only and not all(isinstance(v, datetime) for v in values):
            raise CertLogicError(f"{operator} compares date-times only")
        return _compare(operator, values)

    return compare


def _plus_time_op(operator: str, operands: list[Any], depth: int) -> Compiled:
    operand, amount, unit = _compile(operands[0], depth), operands[1], operands[2]
    return lambda data: _plus_time(operand(data), amount, unit)


def _reduce(operator: str, operands: list[Any], depth: int) -> Compiled:
    source, step, initial = (_compile(item, depth) for item in operands)

    def reduce(data: Any) -> Any:
        items, accumulator = source(data), initial(data)
        if items is None:
            return accumulator
        if not isinstance(items, list):
            raise CertLogicError("reduce needs an array or null as first operand")
        for item in items:
            accumulator = step({"current": item, "accumulator": accumulator, "data": data})
        return accumulator

    return reduce


def _extract_op(operator: str, operands: list[Any], depth: int) -> Compiled:
    operand, index = _compile(operands[0], depth), operands[1]
    return lambda data: _extract_from_uvci(operand(data), index)


def _date_of_birth_op(operator: str, operands: list[Any], depth: int) -> Compiled:
    operand = _compile(operands[0], depth)
    return lambda data: _dcc_date_of_birth(operand(data))


_OPERATORS: dict[str, Callable[[str, list[Any], int], Compiled]] = {
    "if": _if,
    "and": _and,
    "!": _not,
    "===": _equal,
    "in": _in,
    "+": _plus,
    **{name: _comparison for name in _COMPARISONS},
    "plusTime": _plus_time_op,
    "reduce": _reduce,
    "extractFromUVCI": _extract_op,
    "dccDateOfBirth": _date_of_birth_op,
}


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
