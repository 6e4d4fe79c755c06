"""The DCC payload schema by ``ver``: compiled once into small checking closures.

The constraints below are the facts of the published EU DCC JSON schema, versions 1.0.0 to
1.3.3 (types, required members, lengths, patterns, item counts), written out by hand. Value-set
membership and ``format`` (date, date-time) are not asserted here, as in the schema itself:
value sets have their own check (:mod:`verifier.valuesets`) and dates are read by the expiry
check and the rules. ``tests/verifier/test_schema.py`` proves this agrees with the published
schema files.

:func:`check_payload` returns ``None`` when the payload is valid, else a :class:`SchemaProblem`.
Each call is a handful of dictionary look-ups and regex matches: no validator is built per call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KNOWN_VERSIONS", "SchemaProblem", "check_payload", "schema_version_for"]


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """Why a payload fails its schema: a stable ``code``, the JSON path and a reason."""

    code: str  # SCHEMA_INVALID or SCHEMA_VERSION_UNKNOWN
    path: str
    reason: str


# A compiled check: (value, path) -> None when it holds, else (path, reason).
_Check = Callable[[Any, str], tuple[str, str] | None]


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _string(max_length: int | None = None, pattern: str | None = None) -> _Check:
    # JSON-schema patterns are searched, not matched: only an anchored pattern anchors.
    search = re.compile(pattern).search if pattern else None

    def check(value: Any, path: str) -> tuple[str, str] | None:
        if not isinstance(value, str):
            return path, "not a string"
        if max_length is not None and len(value) > max_length:
            return path, f"longer than {max_length} characters"
        if search is not None and search(value) is None:
            return path, f"does not match {pattern}"
        return None

    return check


def _integer(minimum: int, maximum: int | None) -> _Check:
    def check(value: Any, path: str) -> tuple[str, str] | None:
        if not _is_integer(value):
            return path, "not an integer"
        if value < minimum or (maximum is not None and value > maximum):
            return path, f"outside {minimum}..{maximum if maximum is not None else ''}"
        return None

    return check


def _object(
    members: Mapping[str, _Check],
    required: tuple[str, ...] = (),
    any_of: tuple[str, ...] = (),
) -> _Check:
    """An object; ``any_of``: at least one of these members must be present."""

    def check(value: Any, path: str) -> tuple[str, str] | None:
        if not isinstance(value, dict):
            return path, "not an object"
        for name in required:
            if name not in value:
                return f"{path}.{name}", "required member missing"
        if any_of and not any(name in value for name in any_of):
            return path, f"needs one of {', '.join(any_of)}"
        for name, member in members.items():
            if name in value:
                problem = member(value[name], f"{path}.{name}")
                if problem is not None:
                    return problem
        return None

    return check


def _array(item: _Check, max_items: int | None) -> _Check:
    def check(value: Any, path: str) -> tuple[str, str] | None:
        if not isinstance(value, list):
            return path, "not an array"
        if not value:
            return path, "needs at least 1 item"
        if max_items is not None and len(value) > max_items:
            return path, f"has more than {max_items} items"
        for index, element in enumerate(value):
            problem = item(element, f"{path}[{index}]")
            if problem is not None:
                return problem
        return None

    return check


_SEMVER = r"^\d+.\d+.\d+$"  # sic: the published schema's dots match any character
_DOB_1_0 = r"(19|20)\d{2}-\d{2}-\d{2}"
_DOB_1_1 = r"^(19|20)\d\d(-\d\d){0,2}$"
_DOB_1_3 = r"^((19|20)\d\d(-\d\d){0,2}){0,1}$"
_STANDARDISED_NAME = r"^[A-Z<]*$"
_COUNTRY = r"[A-Z]{1,10}"
_GROUPS = ("v", "t", "r")

KNOWN_VERSIONS = ("1.0.0", "1.0.1", "1.1.0", "1.2.0", "1.2.1", "1.3.0", "1.3.1", "1.3.2", "1.3.3")


def _version_tuple(text: str) -> tuple[int, int, int]:
    major, minor, patch = text.split(".")
    return int(major), int(minor), int(patch)


def _compile(version: str) -> _Check:
    """The payload check for one published schema version."""
    v = _version_tuple(version)
    length = 80 if v >= (1, 3, 0) else 50
    text = _string(length)
    code = _string()
    country = _string(pattern=_COUNTRY)
    dose = _integer(1, None if v >= (1, 3, 0) else 9)
    std_name = _string(length, _STANDARDISED_NAME)
    name = _object(
        {"fn": text, "fnt": std_name, "gn": text, "gnt": std_name},
        required=() if v >= (1, 3, 2) else ("fnt",),
        any_of=("fnt", "gnt") if v >= (1, 3, 2) else (),
    )
    common = {"tg": code, "co": country, "is": text, "ci": text}
    vaccination = _object(
        {**common, "vp": code, "mp": code, "ma": code, "dn": dose, "sd": dose, "dt": code},
        required=("tg", "vp", "mp", "ma", "dn", "sd", "dt", "co", "is", "ci"),
    )
    test_members = {**common, "tt": code, "ma": code, "sc": code, "tr": code, "tc": text}
    test_members["nm"] = _string(80) if v >= (1, 3, 0) else code
    if v < (1, 2, 0):
        test_members["dr"] = code
    test = _object(
        test_members,
        required=("tg", "tt", "sc", "tr", "co", "is", "ci")
        if v >= (1, 3, 0)
        else ("tg", "tt", "sc", "tr", "tc", "co", "is", "ci"),
    )
    recovery = _object(
        {**common, "fr": code, "df": code, "du": code},
        required=("tg", "fr", "co", "is", "df", "du", "ci"),
    )
    one_group = v >= (1, 3, 0)
    max_items = 1 if one_group else None
    dob = _DOB_1_3 if v >= (1, 3, 0) else _DOB_1_1 if v >= (1, 1, 0) else _DOB_1_0
    top = _object(
        {
            "ver": _string(pattern=_SEMVER),
            "nam": name,
            "dob": _string(pattern=dob),
            "v": _array(vaccination, max_items),
            "t": _array(test, max_items),
            "r": _array(recovery, max_items),
        },
        required=("ver", "nam", "dob"),
    )

    def check(value: Any, path: str) -> tuple[str, str] | None:
        problem = top(value, path)
        if problem is None and one_group:
            present = [group for group in _GROUPS if group in value]
            if len(present) != 1:
                return path, "needs exactly one of v, t, r"
        return problem

    return check


_COMPILED: dict[str, _Check] = {version: _compile(version) for version in KNOWN_VERSIONS}


def schema_version_for(ver: Any) -> str | None:
    """The published schema that governs a payload's ``ver``.

    An exact match wins; otherwise the newest published version with the same major and minor
    not newer than ``ver`` (a later patch release changes no constraint). ``None`` if none.
    """
    if not isinstance(ver, str):
        return None
    if ver in _COMPILED:
        return ver
    parts = ver.split(".")
    if len(parts) != 3 or not all(part.isdigit() and len(part) <= 4 for part in parts):
        return None
    wanted = (int(parts[0]), int(parts[1]), int(parts[2]))
    candidates = [
        known
        for known in KNOWN_VERSIONS
        if _version_tuple(known)[:2] == wanted[:2] and _version_tuple(known) <= wanted
    ]
    return candidates[-1] if candidates else None


def check_payload(payload: Any) -> SchemaProblem | None:
    """``None`` when ``payload`` satisfies the schema of its ``ver``; else the first problem."""
    ver = payload.get("ver") if isinstance(payload, dict) else None
    version = schema_version_for(ver)
    if version is None:
        if not isinstance(payload, dict):
            return SchemaProblem("SCHEMA_INVALID", "$", "not an object")
        if ver is None:
            return SchemaProblem("SCHEMA_INVALID", "$.ver", "required member missing")
        return SchemaProblem("SCHEMA_VERSION_UNKNOWN", "$.ver", f"no known schema for {ver!r}")
    problem = _COMPILED[version](payload, "$")
    if problem is not None:
        return SchemaProblem("SCHEMA_INVALID", problem[0], problem[1])
    return _one_certificate(payload)


def _one_certificate(payload: dict[str, Any]) -> SchemaProblem | None:
    """A DCC holds exactly one entry of one type. Schema 1.3.0 encodes this; earlier schemas
    did not, but the DCC specification always required it, so it holds for every ``ver``."""
    entries = sum(len(payload[group]) for group in _GROUPS if group in payload)
    if entries != 1:
        return SchemaProblem("SCHEMA_INVALID", "$", f"holds {entries} certificate entries, not 1")
    return None
