"""Every file of the EU dgc-testdata, stage by stage, against its EXPECTEDxxx flags.

Data: ``shared/conformance/dgc-testdata`` (member-state test certificates, Apache-2.0). A flag
that is absent is not tested; ``true`` means the stage must succeed, ``false`` that it must fail.
The only expected failures are the upstream-wrong flags that shared/conformance/README.md lists,
each with its reason below. Flags not in the issue's stage list (EXPECTEDVALIDOBJECT: the JSON
against TESTCTX.SCHEMA; EXPECTEDENCODE: re-encoding) belong to the issuer, not the verifier.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED
from tests.verifier.conformance_data import dgc_files, file_label, load_json
from tests.verifier.dgc_stages import STAGES, NotTestable

_SCHEMA_WRONG = "upstream flag wrong: the payload does not match the schema of its ver"
_FI_DSC = "FI DSCs: their extensions do not parse with current cryptography"

#: (file label or country/*, stage) → reason, exactly the list in shared/conformance/README.md
EXPECTED_FAILURES: dict[tuple[str, str], str] = {
    ("NL/*", "schema"): "NL schema flags are wrong upstream (dgc-testdata issue 107)",
    ("BG/1", "schema"): _SCHEMA_WRONG,
    ("BG/2", "schema"): _SCHEMA_WRONG,
    ("HU/3", "schema"): _SCHEMA_WRONG,
    ("LI/4", "schema"): _SCHEMA_WRONG,
    ("RO/2", "schema"): _SCHEMA_WRONG,
    ("SK/3", "schema"): _SCHEMA_WRONG,
    ("FI/*", "verify"): _FI_DSC,
    ("FI/*", "expiration"): _FI_DSC,
    ("FI/*", "key-usage"): _FI_DSC,
    ("common/CO15", "key-usage"): "an empty extended-key-usage sequence",
    ("IS/3", "key-usage"): "IS/3 key-usage flag is wrong upstream",
}


def _expected_failure(label: str, stage: str) -> str | None:
    country = label.split("/")[0]
    return EXPECTED_FAILURES.get((label, stage)) or EXPECTED_FAILURES.get((f"{country}/*", stage))


def _cases() -> list[Any]:
    if not SHARED.is_dir():
        return [pytest.param(None, None, None, id="no-shared-folder")]
    params = []
    for path in dgc_files(SHARED):
        label = file_label(SHARED, path)
        flags = load_json(path).get("EXPECTEDRESULTS", {})
        for flag, (stage, _) in STAGES.items():
            if flag not in flags:
                continue
            reason = _expected_failure(label, stage)
            marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
            params.append(pytest.param(path, flag, flags[flag], id=f"{label}:{stage}", marks=marks))
    return params


def _run(path: Path, flag: str) -> bool:
    _, stage = STAGES[flag]
    return stage(load_json(path))


@pytest.mark.parametrize(("path", "flag", "expected"), _cases())
def test_stage(shared_dir: Path, path: Path | None, flag: str | None, expected: bool) -> None:
    assert path is not None and flag is not None
    try:
        outcome = _run(path, flag)
    except NotTestable as exc:
        pytest.skip(str(exc))
    assert outcome is expected


def test_summary(shared_dir: Path) -> None:
    """Every file and stage once more, counted; prints the tally the issue asks for."""
    tally: Counter[str] = Counter()
    files_clean = files_listed = 0
    files = dgc_files(shared_dir)
    unexpected: list[str] = []
    for path in files:
        label = file_label(shared_dir, path)
        clean, listed = True, False
        for flag, expected in load_json(path).get("EXPECTEDRESULTS", {}).items():
            if flag not in STAGES:
                continue
            stage = STAGES[flag][0]
            try:
                outcome = _run(path, flag)
            except NotTestable:
                tally["not testable"] += 1
                continue
            if outcome is expected:
                tally["passed"] += 1
            elif _expected_failure(label, stage):
                tally["expected failures"] += 1
                listed = True
            else:
                unexpected.append(f"{label}:{stage}")
                clean = False
        files_clean += clean and not listed
        files_listed += clean and listed
    print(
        f"\ndgc-testdata: {len(files)} files: {files_clean} pass every flagged stage, "
        f"{files_listed} every stage but the listed upstream-wrong flags; "
        f"stages: {tally['passed']} passed, {tally['expected failures']} expected failures "
        f"(upstream-wrong, listed), {tally['not testable']} not testable (data missing), "
        f"{len(unexpected)} unexpected failures"
    )
    assert unexpected == []
