"""The committed HTTP API document (docs/openapi.json) matches the code."""

from __future__ import annotations

import json
from pathlib import Path

from vrs.cli import main
from vrs.openapi import openapi_json

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_openapi_document_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == openapi_json(), (
        "docs/openapi.json is stale: run `vrs openapi docs/openapi.json`"
    )


def test_the_document_lists_the_resident_and_municipality_paths(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    assert main(["openapi", str(out)]) == 0
    paths = json.loads(out.read_text(encoding="utf-8"))["paths"]
    assert "/v1/me" in paths and "/v1/certificates" in paths
    assert "/v1/municipalities/{code}/review" in paths
    assert "/" not in paths and "/app/{page}" not in paths  # pages are not API
