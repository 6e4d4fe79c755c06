"""Schema migrations in code: no ``alembic.ini`` is needed anywhere.

``upgrade(url_or_engine)`` brings a database to the newest revision and ``current(...)`` says
where it is; ``vrs db upgrade`` runs the first and then seeds the reference data. The Alembic
scripts live in :mod:`vrs.db.migrations`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine

from vrs.db.engine import make_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for our scripts, running on ``connection`` if given."""
    config = Config()
    # The value goes through configparser interpolation: a literal % must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def _transaction(target: Engine | str) -> Iterator[Connection]:
    engine = make_engine(target, pool_size=1) if isinstance(target, str) else target
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        if isinstance(target, str):
            engine.dispose()


def upgrade(target: Engine | str, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` in one transaction (where the engine allows)."""
    with _transaction(target) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(target: Engine | str, revision: str = "base") -> None:
    """Undo migrations down to ``revision`` (``base``: an empty schema)."""
    with _transaction(target) as connection:
        command.downgrade(alembic_config(connection), revision)


def current(target: Engine | str) -> str | None:
    """The revision the database is at, or ``None`` for a database never migrated."""
    with _transaction(target) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    """The newest revision shipped with this version of the package."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:  # pragma: no cover - the package always ships a revision
        raise RuntimeError("no migration scripts found in " + str(MIGRATIONS_DIR))
    return revision


def autogenerate_revision(target: Engine | str, message: str) -> Script | None:
    """Write a new revision from the difference between the models and ``target``.

    ``target`` should be a scratch database at head; read and tidy the file it writes.
    """
    with _transaction(target) as connection:
        result = command.revision(alembic_config(connection), message=message, autogenerate=True)
    return result if isinstance(result, Script) else None
