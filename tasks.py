#!/usr/bin/env python3
"""Set up and run VRS with nothing but Python 3.11: no make, no activated virtualenv.

    python3 tasks.py run  [vrs serve options]   migrate, then serve on http://127.0.0.1:8000
    python3 tasks.py test [pytest options]      ruff, ruff format --check, mypy, pytest

Both first make ``.venv`` (if missing) and install the project into it with
``pip install -e '.[dev]'``; they install again only when ``pyproject.toml`` changed since
the last install (a stamp file inside ``.venv`` remembers its hash). The exit status is
that of the failing step, or 0.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
VRS = BIN / ("vrs.exe" if os.name == "nt" else "vrs")
STAMP = VENV / ".vrs-install-stamp"

USAGE = __doc__ or ""


def say(message: str) -> None:
    print(f"tasks.py: {message}", file=sys.stderr, flush=True)


def run(*command: str | Path) -> int:
    say("$ " + " ".join(str(part) for part in command))
    return subprocess.call([str(part) for part in command], cwd=ROOT)  # noqa: S603 - our own tools


def pyproject_hash() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_venv() -> None:
    """Create ``.venv`` and install the project, unless the stamp says it is current."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs under any python3 first
        sys.exit("tasks.py: VRS needs Python 3.11 or newer")
    if not PYTHON.exists():
        say(f"creating {VENV.relative_to(ROOT)}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = pyproject_hash()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and VRS.exists():
        return
    say("installing the project and its development tools into .venv")
    code = run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    if code != 0:
        sys.exit(code)
    STAMP.write_text(wanted + "\n")


def task_run(args: list[str]) -> int:
    ensure_venv()
    code = run(VRS, "db", "upgrade")
    if code != 0:
        return code
    if not any(a == "--port" or a.startswith("--port=") for a in args):
        args = ["--port", "8000", *args]
    if not any(a == "--host" or a.startswith("--host=") for a in args):
        args = ["--host", "127.0.0.1", *args]
    if os.name == "posix":
        # Become the server, so a process manager's SIGTERM and Ctrl+C reach it directly.
        say(f"$ {VRS} serve {' '.join(args)}")
        sys.stderr.flush()
        os.execv(VRS, [str(VRS), "serve", *args])  # noqa: S606 - our own entry point
    try:
        return run(VRS, "serve", *args)
    except KeyboardInterrupt:
        return 0


def task_test(args: list[str]) -> int:
    """Run every check even when an early one fails, then report the first failure."""
    ensure_venv()
    steps: list[tuple[str, list[str | Path]]] = [
        ("ruff check", [BIN / "ruff", "check", "."]),
        ("ruff format", [BIN / "ruff", "format", "--check", "."]),
        ("mypy", [BIN / "mypy"]),
        ("pytest", [BIN / "pytest", *args]),
    ]
    results = [(name, run(*command)) for name, command in steps]
    failed = [(name, code) for name, code in results if code != 0]
    for name, code in results:
        say(f"{name:<12} {'ok' if code == 0 else f'FAILED (exit {code})'}")
    return failed[0][1] if failed else 0


TASKS = {"run": task_run, "test": task_test}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in TASKS:
        print(USAGE, file=sys.stderr)
        return 2
    os.chdir(ROOT)
    return TASKS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
