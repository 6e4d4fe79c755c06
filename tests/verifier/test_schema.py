"""Our compiled DCC schema check agrees with the published schema files.

Oracle: the ``jsonschema`` library run over ``shared/conformance/dcc-schema/<ver>`` (formats not
asserted, as JSON Schema 2020-12 does by default). Inputs: every payload in dgc-testdata, and
Hypothesis mutations of them (members removed, retyped, lengthened, groups added).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.verifier.conformance_data import dgc_files, load_json, schema_file
from verifier.schema import KNOWN_VERSIONS, check_payload, schema_version_for


@cache
def _oracle(shared: Path, version: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_json(schema_file(shared, version)))


def _oracle_says_valid(shared: Path, payload: Any) -> bool | None:
    version = schema_version_for(payload.get("ver")) if isinstance(payload, dict) else None
    if version is None:
        return None
    if not _oracle(shared, version).is_valid(payload):
        return False
    # plus the one rule beyond the published schemas before 1.3.0: exactly one entry
    return sum(len(payload[g]) for g in ("v", "t", "r") if g in payload) == 1


def _payloads(shared: Path) -> list[Any]:
    return [load_json(path)["JSON"] for path in dgc_files(shared) if "JSON" in load_json(path)]


def test_every_published_version_is_known(shared_dir: Path) -> None:
    published = sorted(
        p.name.split(".combined")[0]
        for p in (shared_dir / "conformance" / "dcc-schema").glob("*.json")
    )
    assert sorted(KNOWN_VERSIONS) == published


def test_agrees_with_the_published_schema_on_every_test_payload(shared_dir: Path) -> None:
    payloads = _payloads(shared_dir)
    assert len(payloads) > 300
    compared = 0
    for payload in payloads:
        expected = _oracle_says_valid(shared_dir, payload)
        if expected is None:
            continue
        assert (check_payload(payload) is None) == expected, payload
        compared += 1
    assert compared > 300


_MUTATION_VALUES = st.sampled_from(
    [None, 0, 1, 10, -1, 1.5, "", "X", "A" * 51, "A" * 81, "abc", "2021-01-01", [], {}, [{}], True]
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _mutate(payload: Any, path: tuple[Any, ...], action: str, new: Any) -> Any:
    result = copy.deepcopy(payload)
    if not path:
        return new
    parent = result
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return result


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_agrees_with_the_published_schema_on_mutated_payloads(shared_dir: Path, data: Any) -> None:
    payloads = _payloads(shared_dir)
    payload = data.draw(st.sampled_from(payloads))
    path = data.draw(st.sampled_from(_paths(payload)))
    action = data.draw(st.sampled_from(["delete", "replace"]))
    new = data.draw(_MUTATION_VALUES)
    mutated = _mutate(payload, path, action, new)
    extra = data.draw(st.sampled_from([None, "v", "t", "r"]))
    if extra and isinstance(mutated, dict) and extra not in mutated:
        mutated[extra] = [{}]
    expected = _oracle_says_valid(shared_dir, mutated)
    if expected is None:
        return
    assert (check_payload(mutated) is None) == expected, mutated


@pytest.mark.parametrize(
    ("ver", "governing"),
    [("1.3.0", "1.3.0"), ("1.3.9", "1.3.3"), ("1.2.7", "1.2.1"), ("1.0.0", "1.0.0")],
)
def test_unpublished_patch_versions_use_the_latest_schema_of_their_minor(
    ver: str, governing: str
) -> None:
    assert schema_version_for(ver) == governing


@pytest.mark.parametrize("ver", ["2.0.0", "1.4.0", "0.9.0", "x", 130, "1.3"])
def test_unknown_versions_are_reported_as_such(ver: Any) -> None:
    problem = check_payload({"ver": ver, "nam": {"fnt": "A"}, "dob": "", "v": []})
    assert problem is not None and problem.code == "SCHEMA_VERSION_UNKNOWN"


def test_missing_ver_is_invalid() -> None:
    problem = check_payload({"nam": {"fnt": "A"}, "dob": ""})
    assert problem is not None and problem.code == "SCHEMA_INVALID"
