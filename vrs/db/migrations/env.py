"""Alembic environment: runs on the connection :mod:`vrs.db.migrate` hands in.

There is no ``alembic.ini``: :func:`vrs.db.migrate.alembic_config` builds the configuration
in code and puts an open connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import vrs.db.models  # noqa: F401 - registers the tables on SQLModel.metadata
from vrs.db.types import UTCDateTime

target_metadata = SQLModel.metadata


def _render_item(type_: str, obj: Any, _context: Any) -> str | Literal[False]:
    """Write plain SQLAlchemy types into revisions, so they do not import the models' code."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through vrs.db.migrate (or `vrs db upgrade`)")
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported")
    _run(connection)


main()
