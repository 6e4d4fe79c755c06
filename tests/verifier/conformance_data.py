"""Reading the EU DCC conformance data in ``shared/conformance`` (never copied into the repo)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any


def dgc_files(shared: Path) -> list[Path]:
    """Every dgc-testdata test file (``<CC>/2DCode/raw/<n>.json`` and ``common/``)."""
    root = shared / "conformance" / "dgc-testdata"
    return sorted(root.glob("*/2DCode/raw/*.json"))


def file_label(shared: Path, path: Path) -> str:
    """``DE/1``-style name of a test file, as the conformance README lists them."""
    country = path.parents[2].name
    return f"{country}/{path.stem}"


@cache
def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def schema_file(shared: Path, version: str) -> Path:
    return shared / "conformance" / "dcc-schema" / f"{version}.combined-schema.json"
