"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from tests.conftest import PG_URL
from tests.scratch_db import scratch_database_url
from vrs.db import migrate
from vrs.db.engine import make_engine
from vrs.db.models import ALL_TABLES


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    with scratch_database_url(backend, PG_URL, tmp_path) as url:
        yield url


def test_upgrade_builds_the_models_schema_and_downgrade_removes_it(empty_url: str) -> None:
    assert migrate.current(empty_url) is None

    migrate.upgrade(empty_url)

    assert migrate.current(empty_url) == migrate.head()
    engine = make_engine(empty_url, pool_size=1)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
        assert differences == [], (
            "the models and the migrations disagree; add a revision "
            "(see docs/operations.md, 'Changing the schema'): " + repr(differences)
        )
        assert {t.name for t in ALL_TABLES} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()

    migrate.downgrade(empty_url, "base")

    assert migrate.current(empty_url) is None
    engine = make_engine(empty_url, pool_size=1)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    migrate.upgrade(empty_url)
    assert migrate.current(empty_url) == migrate.head()
