"""``tasks.py``: installs into .venv only when pyproject.toml changed; unknown tasks are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tasks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """A project folder whose venv exists; returns the commands tasks.py would run."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "vrs"):
        (bin_dir / tool).write_text("")
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    monkeypatch.setattr(tasks, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(tasks, "PYTHON", bin_dir / "python")
    monkeypatch.setattr(tasks, "VRS", bin_dir / "vrs")
    monkeypatch.setattr(tasks, "STAMP", tmp_path / ".venv" / ".vrs-install-stamp")
    calls: list[tuple[str, ...]] = []

    def fake_run(*command: str | Path) -> int:
        calls.append(tuple(str(part) for part in command))
        return 0

    monkeypatch.setattr(tasks, "run", fake_run)
    return calls


def test_installs_once_and_again_only_after_pyproject_changes(
    project: list[tuple[str, ...]],
) -> None:
    tasks.ensure_venv()
    tasks.ensure_venv()
    assert len(project) == 1
    assert project[0][-5:] == ("pip", "install", "--quiet", "-e", ".[dev]")

    (tasks.ROOT / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    tasks.ensure_venv()
    assert len(project) == 2


def test_a_failed_install_stops_and_leaves_no_stamp(
    project: list[tuple[str, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "run", lambda *command: 3)
    with pytest.raises(SystemExit) as stopped:
        tasks.ensure_venv()
    assert stopped.value.code == 3
    assert not tasks.STAMP.exists()


def test_test_task_runs_every_check_and_reports_the_first_failure(
    project: list[tuple[str, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks.STAMP.write_text(tasks.pyproject_hash() + "\n")
    codes = iter([0, 1, 0, 5])

    def fake_run(*command: str | Path) -> int:
        project.append(tuple(str(part) for part in command))
        return next(codes)

    monkeypatch.setattr(tasks, "run", fake_run)
    assert tasks.task_test(["-k", "cli"]) == 1
    tools = [Path(command[0]).name for command in project]
    assert tools == ["ruff", "ruff", "mypy", "pytest"]
    assert project[-1][1:] == ("-k", "cli")


def test_without_a_task_it_prints_usage_and_exits_2() -> None:
    done = subprocess.run(  # noqa: S603 - the repository's own script
        [sys.executable, str(ROOT / "tasks.py"), "deploy"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "python3 tasks.py run" in done.stderr
