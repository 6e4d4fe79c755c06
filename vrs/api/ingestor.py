"""Chooses the way a tablet's post reaches the database.

PostgreSQL: the asynchronous fast path (:mod:`vrs.domain.doses_pg`) on a psycopg pool,
opened on first use and closed with the app. Single posts that arrive while earlier ones
are being written wait for the next write and share it (group commit): under load one
transaction carries many tablets' records, each still checked and answered on its own;
when the service is idle a post is written at once. Any other engine: the portable
SQLAlchemy path (:mod:`vrs.domain.doses`) in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from vrs.db.pgpool import LazyPool, make_async_pool
from vrs.domain import doses, doses_pg
from vrs.domain.auth import Principal
from vrs.domain.errors import DomainError
from vrs.domain.refcache import ReferenceData, cached_reference_data, reference_data

#: Writers of grouped single posts running at once (each holds one pooled connection).
GROUP_WRITERS = 4
#: Most single posts one grouped write carries.
GROUP_SIZE = 256


@dataclass
class _Waiting:
    submission: doses_pg.Submission
    answer: asyncio.Future[list[doses.BatchItem] | DomainError]


class Ingestor:
    def __init__(self, engine: Engine, *, cache_ttl: float, fast_path: bool = True) -> None:
        self.engine = engine
        self.pool: AsyncConnectionPool | None = make_async_pool(engine) if fast_path else None
        self.places = doses_pg.PlaceCache(ttl=cache_ttl)
        self._lazy = LazyPool(self.pool)
        self._queue: list[_Waiting] = []
        self._writers = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        await self._lazy.close()

    async def _pool(self) -> AsyncConnectionPool:
        return await self._lazy.get()

    async def _reference(self) -> ReferenceData:
        data = cached_reference_data(self.engine)
        if data is None:
            data = await run_in_threadpool(self._load_reference)
        return data

    def _load_reference(self) -> ReferenceData:
        with Session(self.engine) as session:
            return reference_data(session)

    async def batch(
        self, principal: Principal, records: Sequence[object], now: datetime
    ) -> list[doses.BatchItem]:
        if self.pool is None:
            return await run_in_threadpool(self._sync_batch, principal, records, now)
        pool = await self._pool()
        async with pool.connection() as conn:
            return await doses_pg.ingest_batch(
                conn, principal, records, now, places=self.places, reference=self._reference
            )

    async def one(self, principal: Principal, record: object, now: datetime) -> doses.IngestResult:
        if self.pool is None:
            [item] = await self.batch(principal, [record], now)
        else:
            answer = await self._grouped(doses_pg.Submission(principal, [record], now))
            if isinstance(answer, DomainError):
                raise answer
            [item] = answer
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    async def _grouped(
        self, submission: doses_pg.Submission
    ) -> list[doses.BatchItem] | DomainError:
        waiting = _Waiting(submission, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        if self._writers < GROUP_WRITERS:
            self._writers += 1
            task = asyncio.create_task(self._write_groups())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await waiting.answer

    async def _write_groups(self) -> None:
        """Write queued single posts, a group at a time, until the queue is empty."""
        try:
            while self._queue:
                group = self._queue[:GROUP_SIZE]
                del self._queue[:GROUP_SIZE]
                try:
                    pool = await self._pool()
                    async with pool.connection() as conn:
                        answers = await doses_pg.ingest_many(
                            conn,
                            [w.submission for w in group],
                            places=self.places,
                            reference=self._reference,
                        )
                except BaseException as exc:  # every waiter of the group gets the failure
                    failure = exc if isinstance(exc, Exception) else RuntimeError("cancelled")
                    for w in group:
                        if not w.answer.done():
                            w.answer.set_exception(failure)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for w, answer in zip(group, answers, strict=True):
                    if not w.answer.done():
                        w.answer.set_result(answer)
        finally:
            self._writers -= 1

    def _sync_batch(
        self, principal: Principal, records: Sequence[object], now: datetime
    ) -> list[doses.BatchItem]:
        with Session(self.engine, expire_on_commit=False) as session:
            return doses.ingest_batch(session, principal, records, now)
