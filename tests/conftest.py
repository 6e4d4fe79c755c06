"""Shared fixtures: a clean database per test, on SQLite always and PostgreSQL when set.

``VRS_TEST_DATABASE_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/test``) adds the
PostgreSQL run of every database test; without it those cases skip with that reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel

from vrs.app import create_app
from vrs.db.engine import make_engine
from vrs.db.models import ALL_TABLES
from vrs.domain.auth import SYSTEM, Role, create_credential
from vrs.domain.places import add_municipality, add_site
from vrs.domain.reference import seed_reference_data
from vrs.settings import Settings

PG_URL = os.environ.get("VRS_TEST_DATABASE_URL", "")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

#: The frozen "now" most tests run at (JST 2023-06-01 09:00).
NOW = datetime(2023, 6, 1, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def _pg_engine() -> Iterator[Engine]:
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _truncate(engine: Engine) -> None:
    names = ", ".join(t.name for t in ALL_TABLES)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("PostgreSQL run: set VRS_TEST_DATABASE_URL to include it")
    return str(request.param)


@pytest.fixture
def engine(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A clean, migrated-equivalent database with the reference data seeded."""
    if backend == "postgresql":
        pg: Engine = request.getfixturevalue("_pg_engine")
        _truncate(pg)
        eng = pg
    else:
        eng = make_engine(f"sqlite:///{tmp_path / 'vrs.db'}")
        SQLModel.metadata.create_all(eng)
    with Session(eng) as session:
        seed_reference_data(session)
        session.commit()
    yield eng
    if backend == "sqlite":
        eng.dispose()


@pytest.fixture
def settings(engine: Engine, tmp_path: Path) -> Settings:
    return Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        data_dir=tmp_path,
        env="test",
    )


@dataclass
class Clock:
    """A settable clock handed to the app: tests move time explicitly."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: Clock) -> FastAPI:
    # Caches off: tests see a revocation or deactivation at once (the caches have their own tests).
    return create_app(settings, engine=engine, clock=clock, cache_ttl=0)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class World:
    """A municipality (千代田区 131016), a second one (新宿区 131041), a site with one tablet,
    and a credential for each role."""

    engine: Engine
    municipality: str = "131016"
    other_municipality: str = "131041"
    site: str = "1310000017"
    other_site: str = "1310000025"
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return bearer(self.tokens[who])

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


@pytest.fixture
def world(engine: Engine) -> World:
    w = World(engine=engine)
    with Session(engine) as s:
        add_municipality(s, actor=SYSTEM, code=w.municipality, name="千代田区", now=NOW)
        add_municipality(s, actor=SYSTEM, code=w.other_municipality, name="新宿区", now=NOW)
        add_site(s, actor=SYSTEM, code=w.site, name="Chiyoda mass site", now=NOW)
        add_site(s, actor=SYSTEM, code=w.other_site, name="Shinjuku clinic", now=NOW)
        s.flush()

        def made(**kw: object) -> str:
            return create_credential(s, actor=SYSTEM, now=NOW, **kw).token  # type: ignore[arg-type]

        w.tokens["admin"] = made(role=Role.ADMIN, name="operator")
        w.tokens["municipality"] = made(
            role=Role.MUNICIPALITY, name="chiyoda staff", municipality_code=w.municipality
        )
        w.tokens["other_municipality"] = made(
            role=Role.MUNICIPALITY, name="shinjuku staff", municipality_code=w.other_municipality
        )
        w.tokens["site"] = made(role=Role.SITE, name="tablet 1", site_code=w.site)
        w.tokens["other_site"] = made(role=Role.SITE, name="tablet 9", site_code=w.other_site)
        s.commit()
    return w


@pytest.fixture
def shared_dir() -> Path:
    """The project's ``shared/`` folder beside the repository; a fresh clone has none."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared/ folder beside the repository ({SHARED}); none here")
    return SHARED
