"""The ``vrs`` command as an operator uses it: exit codes, messages, and what it stores."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlmodel import Session

from tests.conftest import PG_URL
from tests.scratch_db import scratch_database_url
from vrs.app import create_app
from vrs.cli import main
from vrs.db import migrate
from vrs.db.engine import make_engine
from vrs.db.models import Municipality, VaccineProduct
from vrs.domain.auth import Role, authenticate
from vrs.domain.errors import Unauthenticated
from vrs.settings import Settings

CHIYODA = "131016"
SITE = "1310000017"


@pytest.fixture
def database_url(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty database the CLI is pointed at through the environment."""
    with scratch_database_url(backend, PG_URL, tmp_path) as url:
        monkeypatch.setenv("VRS_DATABASE_URL", url)
        monkeypatch.setenv("VRS_DATA_DIR", str(tmp_path))
        monkeypatch.delenv("VRS_ENV", raising=False)
        monkeypatch.delenv("VRS_MY_NUMBER_HMAC_KEY", raising=False)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'vrs.db'}"
    monkeypatch.setenv("VRS_DATABASE_URL", url)
    monkeypatch.setenv("VRS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("VRS_ENV", raising=False)
    monkeypatch.delenv("VRS_MY_NUMBER_HMAC_KEY", raising=False)
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def upgraded(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "db", "upgrade")
    assert code == 0, err


def test_db_upgrade_migrates_to_head_and_seeds_the_vaccines(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "db", "current")
    assert code == 0
    assert out.startswith("none")

    upgraded(capsys)
    upgraded(capsys)  # a second run changes nothing and does not fail

    code, out, _ = run(capsys, "db", "current")
    assert (code, out.strip()) == (0, migrate.head())
    engine = make_engine(database_url, pool_size=1)
    try:
        with Session(engine) as session:
            products = session.execute(select(func.count()).select_from(VaccineProduct))
            assert products.scalar_one() == 5
    finally:
        engine.dispose()


def test_commands_on_an_unmigrated_database_say_what_to_run(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "municipalities", "list")
    assert code == 1
    assert "vrs db upgrade" in err


def test_a_municipality_code_with_a_bad_check_digit_is_refused(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    upgraded(capsys)

    code, out, err = run(capsys, "municipalities", "add", "131017", "千代田区")

    assert code == 2
    assert out == ""
    assert err.startswith("error: BAD_MUNICIPALITY_CODE: ")
    assert run(capsys, "municipalities", "list")[1] == ""


def test_a_site_credential_authenticates_and_its_token_is_never_stored_or_listed(
    database_url: str, backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upgraded(capsys)
    assert run(capsys, "municipalities", "add", CHIYODA, "千代田区")[0] == 0
    assert run(capsys, "sites", "add", SITE, "Chiyoda mass site", "--municipality", CHIYODA)[0] == 0

    code, out, err = run(
        capsys, "credentials", "create", "--role", "site", "--site", SITE, "--name", "tablet 1"
    )

    assert code == 0
    token = out.strip()
    assert out == token + "\n", "stdout holds the token alone, so $(vrs credentials create) works"
    assert "only once" in err
    assert token not in err

    settings = Settings.from_env()
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
    with Session(app.state.engine) as session:
        principal = authenticate(session, token)
    app.state.engine.dispose()
    assert (principal.role, principal.site_code) == (Role.SITE, SITE)
    assert principal.device_id is not None

    code, listing, _ = run(capsys, "credentials", "list")
    assert code == 0
    assert "tablet 1" in listing
    assert "active" in listing
    assert token not in listing

    assert token.encode() not in _stored_bytes(backend, database_url, tmp_path)


def _stored_bytes(backend: str, url: str, tmp_path: Path) -> bytes:
    """Everything the database holds: the SQLite files, or every PostgreSQL row as text."""
    if backend == "sqlite":
        return b"".join(p.read_bytes() for p in tmp_path.glob("scratch.db*"))
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            names = (
                conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
                .scalars()
                .all()
            )
            dumps = [
                # Table names come from pg_tables, not from input.
                str(conn.execute(text(f'SELECT * FROM "{name}"')).all()).encode()  # noqa: S608
                for name in names
            ]
    finally:
        engine.dispose()
    assert dumps, "no tables to scan"
    return b"".join(dumps)


def test_a_revoked_credential_no_longer_authenticates(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    upgraded(capsys)
    token = run(capsys, "credentials", "create", "--role", "admin", "--name", "operator")[1]
    credential_id = run(capsys, "credentials", "list")[1].splitlines()[1].split()[0]

    code, out, _ = run(capsys, "credentials", "revoke", credential_id)

    assert code == 0
    assert "revoked" in out
    assert "revoked" in run(capsys, "credentials", "list")[1].splitlines()[1]
    engine = make_engine(database_url, pool_size=1)
    try:
        with Session(engine) as session, pytest.raises(Unauthenticated):
            authenticate(session, token.strip())
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("argv", "code_in_error"),
    [
        (["credentials", "revoke", "not-an-id"], "BAD_CREDENTIAL_ID"),
        (["credentials", "revoke", "6f1d2c3b-0000-4000-8000-000000000000"], "UNKNOWN_CREDENTIAL"),
        (
            ["credentials", "create", "--role", "municipality", "--name", "x"],
            "MISSING_MUNICIPALITY",
        ),
        (
            ["credentials", "create", "--role", "site", "--site", SITE, "--name", "x"],
            "UNKNOWN_SITE",
        ),
        (["sites", "add", "99", "Nowhere"], "BAD_SITE_CODE"),
    ],
)
def test_refused_requests_exit_2_with_their_error_code(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], code_in_error: str
) -> None:
    upgraded(capsys)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {code_in_error}: ")


def test_loading_municipalities_is_all_or_nothing(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upgraded(capsys)
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name\n131016,千代田区\n131042,新宿区\n", encoding="utf-8")
    good = tmp_path / "good.csv"
    good.write_text("code,name,coupon_format\n131016,千代田区,damm\n131130,渋谷区,legacy\n")

    code, _, err = run(capsys, "municipalities", "load", str(bad))
    assert code == 2
    assert "error: INVALID_FILE" in err
    assert "line 3: BAD_MUNICIPALITY_CODE" in err
    assert run(capsys, "municipalities", "list")[1] == ""

    code, out, _ = run(capsys, "municipalities", "load", str(good))
    assert (code, out) == (0, "2 municipalities loaded\n")
    listing = run(capsys, "municipalities", "list")[1].splitlines()
    assert [line.split()[:2] for line in listing] == [["131016", "damm"], ["131130", "legacy"]]
    engine = make_engine(sqlite_url, pool_size=1)
    try:
        with Session(engine) as session:
            assert session.get(Municipality, "131130") is not None
    finally:
        engine.dispose()


def test_serve_refuses_production_without_a_secret(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VRS_ENV", "production")

    code, _, err = run(capsys, "serve", "--port", "9")

    assert code == 2
    assert err.startswith("error: MISSING_SECRET: ")
    assert "VRS_MY_NUMBER_HMAC_KEY" in err


def test_a_group_without_a_command_shows_its_help(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "credentials")
    assert code == 2
    assert "create" in err
    assert "revoke" in err


def test_the_installed_command_runs_as_a_process(sqlite_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "VRS_DATABASE_URL": sqlite_url, "VRS_DATA_DIR": str(tmp_path)}

    def vrs(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "vrs.cli", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    upgrade = vrs("db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert migrate.head() in upgrade.stdout

    refused = vrs("municipalities", "add", "131017", "千代田区")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: BAD_MUNICIPALITY_CODE: ")

    added = vrs("municipalities", "add", CHIYODA, "千代田区")
    assert added.returncode == 0, added.stderr
    assert vrs("municipalities", "list").stdout.split() == [CHIYODA, "damm", "千代田区"]
