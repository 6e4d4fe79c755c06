"""The asynchronous PostgreSQL pool of the ingest fast path (psycopg 3).

The synchronous SQLAlchemy engine serves every other route; tablets' posts are the one
path hot enough to be worth a second, leaner way to the database (docs/benchmarks.md).
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from sqlalchemy.engine import URL


def conninfo(url: URL) -> str:
    """A libpq connection URI for a SQLAlchemy PostgreSQL URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def make_async_pool(engine: Engine, *, max_size: int = 16) -> AsyncConnectionPool | None:
    """An unopened pool for a PostgreSQL engine (open it in the app's lifespan); None for others."""
    if engine.dialect.name != "postgresql":
        return None
    return AsyncConnectionPool(
        conninfo(engine.url),
        min_size=min(4, max_size),
        max_size=max_size,
        open=False,
        name="vrs-ingest",
        # The fast path's statements are index lookups driven by array parameters. Planning
        # them afresh each time (a "custom" plan) cost three times their execution
        # (docs/benchmarks.md); the generic plan of the prepared statement is as good.
        kwargs={"options": "-c plan_cache_mode=force_generic_plan"},
    )
