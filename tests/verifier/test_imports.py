"""The verifier imports nothing internal but ``certs.wire`` (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import verifier

INTERNAL = {"vrs", "scanner", "certs", "keys"}


def test_only_certs_wire_is_imported() -> None:
    package = Path(verifier.__file__).parent
    found: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            found |= {name for name in names if name.split(".")[0] in INTERNAL}
    assert found == {"certs.wire"}
