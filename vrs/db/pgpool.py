"""The asynchronous PostgreSQL pool of the ingest fast path (psycopg 3).

The synchronous SQLAlchemy engine serves every other route; tablets' posts are the one
path hot enough to be worth a second, leaner way to the database (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import set_json_loads
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
        configure=_configure,
    )


async def _configure(conn: AsyncConnection[Any]) -> None:
    # The fast path's statements are index look-ups driven by JSON parameters. Planning them
    # afresh each time (a "custom" plan) cost three times their execution
    # (docs/benchmarks.md); the generic plan of the prepared statement is as good. A SET
    # rather than a start-up option, which connection poolers such as PgBouncer refuse.
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    # Generic plans carry pessimistic cost estimates (they cannot see that a post holds one
    # record), which crossed the JIT threshold: compiling took 20 ms for a 0.3 ms query.
    await conn.execute("SET jit = off")
    await conn.commit()
    set_json_loads(orjson.loads, conn)
