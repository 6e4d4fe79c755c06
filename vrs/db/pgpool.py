"""The asynchronous PostgreSQL pool of the ingest fast path (psycopg 3).

The synchronous SQLAlchemy engine serves every other route; tablets' posts are the one
path hot enough to be worth a second, leaner way to the database (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
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


def make_async_pool(
    engine: Engine, *, max_size: int = 16, name: str = "vrs-ingest", autocommit: bool = False
) -> AsyncConnectionPool | None:
    """An unopened pool for a PostgreSQL engine (open it in the app's lifespan); None for others.

    ``autocommit``: each statement is its own transaction (the certificate fast path writes
    everything of one issue in a single statement, and so saves the COMMIT round trip)."""
    if engine.dialect.name != "postgresql":
        return None
    return AsyncConnectionPool(
        conninfo(engine.url),
        min_size=min(4, max_size),
        max_size=max_size,
        open=False,
        name=name,
        configure=_configure,
        check=PlanRefresher(),
        kwargs={"autocommit": autocommit},
    )


class PlanRefresher:
    """Makes each pooled connection drop its prepared statements now and then: after 1 s of
    its life, then 2 s later, 4 s, ... and every minute from then on.

    The fast paths run prepared statements with generic plans, kept for the connection's
    life unless an ``ANALYZE`` invalidates them. A plan made while ``dose_record`` held a
    page or two (a new deployment's first posts) cannot tell its unique indexes from the
    others, all equally cheap on a tiny table; it picked an index on the municipality alone,
    and as the table grew every look-up read the whole municipality (docs/benchmarks.md).
    Made again a moment later, the plan sees the table's real size. The pool calls this on
    every connection it hands out (its ``check``); all but a dictionary look-up is rare.
    """

    FIRST = 1.0
    LONGEST = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        #: backend process id -> (when to drop its statements, the interval after that)
        self._due: dict[int, tuple[float, float]] = {}

    async def __call__(self, conn: AsyncConnection[Any]) -> None:
        pid, now = conn.info.backend_pid, self.clock()
        due, interval = self._due.get(pid, (now + self.FIRST, self.FIRST))
        if now >= due:
            # psycopg's own way: on a rollback it forgets its prepared statements and has the
            # server drop them (a DEALLOCATE ALL sent behind its back left its list stale).
            async with conn.transaction(force_rollback=True):
                pass
            interval = min(interval * 2, self.LONGEST)
            due = now + interval
        if len(self._due) > 10_000:  # ids of connections long closed
            self._due.clear()
        self._due[pid] = (due, interval)


class LazyPool:
    """A pool opened on first use (once, however many requests ask at the same time) and
    closed with the app."""

    def __init__(self, pool: AsyncConnectionPool | None) -> None:
        self.pool = pool
        self._opening = asyncio.Lock()
        self._opened = False

    @property
    def opened(self) -> bool:
        return self._opened

    async def get(self) -> AsyncConnectionPool:
        assert self.pool is not None
        if not self._opened:
            async with self._opening:
                if not self._opened:
                    await self.pool.open(wait=True)
                    self._opened = True
        return self.pool

    async def close(self) -> None:
        if self.pool is not None and self._opened:
            await self.pool.close()
            self._opened = False


async def _configure(conn: AsyncConnection[Any]) -> None:
    # The fast path's statements are index look-ups driven by JSON parameters. Planning them
    # afresh each time (a "custom" plan) cost three times their execution
    # (docs/benchmarks.md); the generic plan of the prepared statement is as good. A SET
    # rather than a start-up option, which connection poolers such as PgBouncer refuse.
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    # Generic plans carry pessimistic cost estimates (they cannot see that a post holds one
    # record), which crossed the JIT threshold: compiling took 20 ms for a 0.3 ms query.
    await conn.execute("SET jit = off")
    # Every statement of the fast paths finds its rows through an index, one key at a time.
    # A generic plan made while a table was empty (a new deployment, just analysed) chose
    # sequential scans for those look-ups, and kept them while the table grew: a batch of
    # 1,000 records took 15 s instead of 50 ms until autovacuum analysed the table again
    # (docs/benchmarks.md). Without sequential scans the plan no longer depends on what the
    # statistics said when it was made.
    await conn.execute("SET enable_seqscan = off")
    await conn.commit()
    set_json_loads(orjson.loads, conn)
