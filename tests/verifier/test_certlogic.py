"""The CertLogic engine against the specification's own test suites (both of them).

Data: ``shared/conformance/certlogic-testsuite`` (the CertLogic specification's test suites,
Apache-2.0). Only assertions or cases marked ``"directive": "skip"`` there are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from verifier.certlogic import CertLogicError, evaluate, parse_datetime, validate


def _suite_files(shared: Path, folder: str) -> list[Path]:
    return sorted((shared / "conformance" / "certlogic-testsuite" / folder).glob("*.json"))


def _normalise(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def test_evaluation_suite(shared_dir: Path) -> None:
    files = _suite_files(shared_dir, "testSuite")
    assert files, "no CertLogic evaluation suite files"
    passed = skipped = 0
    failures: list[str] = []
    for path in files:
        suite = json.loads(path.read_text(encoding="utf-8"))
        for case in suite["cases"]:
            for number, assertion in enumerate(case["assertions"]):
                if case.get("directive") == "skip" or assertion.get("directive") == "skip":
                    skipped += 1
                    continue
                expr = assertion.get("certLogicExpression", case.get("certLogicExpression"))
                label = f"{path.name} / {case['name']} / #{number}"
                try:
                    actual = evaluate(expr, assertion["data"])
                except CertLogicError as exc:
                    failures.append(f"{label}: raised {exc}")
                    continue
                if _normalise(actual) != assertion["expected"] or (type(actual) is bool) != (
                    type(assertion["expected"]) is bool
                ):
                    failures.append(f"{label}: {actual!r} != {assertion['expected']!r}")
                else:
                    passed += 1
    print(f"CertLogic evaluation suite: {passed} passed, {skipped} skipped (marked skip)")
    assert failures == []
    assert passed == 228  # every assertion not marked skip


def test_validation_suite(shared_dir: Path) -> None:
    files = _suite_files(shared_dir, "validation-testSuite")
    assert files, "no CertLogic validation suite files"
    checked = 0
    for path in files:
        suite = json.loads(path.read_text(encoding="utf-8"))
        for case in suite["cases"]:
            if case.get("directive") == "skip":
                continue
            issues = validate(case["certLogicExpression"])
            got = [{"expr": issue.expr, "message": issue.message} for issue in issues]
            assert got == case["issues"], f"{path.name}: {case['certLogicExpression']!r}"
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize(
    "expr",
    [
        {"plusTime": ["", 1, "day"]},
        {"plusTime": ["2021-01-01", 1, "week"]},
        {"after": [1, 2]},
        {"<": ["a", "b"]},
        {"in": ["a", "b"]},
        {"reduce": [3, 0, 0]},
        {"nope": [1]},
        {"if": [True, 1]},
        {"+": [1, "2"]},
        {"dccDateOfBirth": [""]},
    ],
)
def test_bad_operands_raise_our_error(expr: Any) -> None:
    with pytest.raises(CertLogicError) as caught:
        evaluate(expr, {})
    assert caught.value.code == "RULE_EVALUATION_ERROR"


def test_deep_expression_is_refused_not_a_recursion_error() -> None:
    expr: Any = True
    for _ in range(10_000):
        expr = {"!": [expr]}
    with pytest.raises(CertLogicError):
        evaluate(expr, {})
    assert any("deeply" in issue.message for issue in validate(expr))


def test_plus_time_months_roll_over_like_the_reference() -> None:
    result = evaluate({"plusTime": ["2021-01-31", 1, "month"]}, None)
    assert result == parse_datetime("2021-03-03")


def test_offsets_are_normalised_to_utc() -> None:
    assert parse_datetime("2021-06-01T09:00:00+09:00") == parse_datetime("2021-06-01T00:00:00Z")
    assert parse_datetime("2021-06-01T09:00:00+0900") == parse_datetime("2021-06-01T00:00Z")
