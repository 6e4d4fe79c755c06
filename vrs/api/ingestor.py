"""Chooses the way a tablet's post reaches the database.

PostgreSQL: the asynchronous fast path (:mod:`vrs.domain.doses_pg`) on a psycopg pool,
opened on first use and closed with the app. Any other engine: the portable SQLAlchemy
path (:mod:`vrs.domain.doses`) in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from vrs.db.pgpool import make_async_pool
from vrs.domain import doses, doses_pg
from vrs.domain.auth import Principal
from vrs.domain.refcache import ReferenceData, cached_reference_data, reference_data


class Ingestor:
    def __init__(self, engine: Engine, *, cache_ttl: float, fast_path: bool = True) -> None:
        self.engine = engine
        self.pool: AsyncConnectionPool | None = make_async_pool(engine) if fast_path else None
        self.places = doses_pg.PlaceCache(ttl=cache_ttl)
        self._opening = asyncio.Lock()
        self._opened = False

    async def close(self) -> None:
        if self.pool is not None and self._opened:
            await self.pool.close()
            self._opened = False

    async def _pool(self) -> AsyncConnectionPool:
        assert self.pool is not None
        if not self._opened:
            async with self._opening:
                if not self._opened:
                    await self.pool.open(wait=True)
                    self._opened = True
        return self.pool

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
        [item] = await self.batch(principal, [record], now)
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def _sync_batch(
        self, principal: Principal, records: Sequence[object], now: datetime
    ) -> list[doses.BatchItem]:
        with Session(self.engine, expire_on_commit=False) as session:
            return doses.ingest_batch(session, principal, records, now)
