"""Throwaway databases for tests that need a schema of their own (migrations, the CLI).

On PostgreSQL each one is a fresh database ``vrs_scratch_<random>`` next to the one
``VRS_TEST_DATABASE_URL`` names, dropped afterwards; the shared ``test`` database, which
the other tests truncate between cases, is never touched.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from vrs.db.engine import normalise_url


@contextmanager
def scratch_database_url(backend: str, pg_url: str, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty database on ``backend``; remove it afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    name = "vrs_scratch_" + secrets.token_hex(6)
    admin_url = make_url(normalise_url(pg_url)).set(database="postgres")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield (
                make_url(normalise_url(pg_url))
                .set(database=name)
                .render_as_string(hide_password=False)
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
