"""Chooses the way a resident's ``POST /v1/certificates`` reaches the database.

PostgreSQL: the asynchronous fast path (:mod:`vrs.domain.issuance_pg`) on its own psycopg
pool of autocommit connections, opened on first use and closed with the app; resident
session tokens are looked up on the same pool. Any other engine, or with
``VRS_CERTIFICATE_FAST_PATH=0``: the portable SQLAlchemy path
(:mod:`vrs.domain.issuance`) in a worker thread. Both give the same answers, refusals and
stored rows (tests/vrs/test_issuance_paths.py).
"""

from __future__ import annotations

from datetime import datetime

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from keys import Signer
from vrs.db.pgpool import LazyPool, make_async_pool
from vrs.domain import issuance, issuance_pg
from vrs.domain.auth import Principal
from vrs.domain.keyring import ServiceKeys
from vrs.domain.resident_auth import authenticate_session


class Certifier:
    def __init__(self, engine: Engine, *, fast_path: bool = True) -> None:
        self.engine = engine
        self.pool: AsyncConnectionPool | None = (
            make_async_pool(engine, max_size=8, name="vrs-certificates", autocommit=True)
            if fast_path
            else None
        )
        self._lazy = LazyPool(self.pool)
        self._keys_loaded = False

    async def close(self) -> None:
        await self._lazy.close()

    async def _pool(self) -> AsyncConnectionPool:
        return await self._lazy.get()

    async def session_principal(self, token: str, now: datetime) -> Principal:
        """The resident principal of a session token (see ``authenticate_session``)."""
        if self.pool is None:
            return await run_in_threadpool(self._sync_session_principal, token, now)
        pool = await self._pool()
        async with pool.connection() as conn:
            return await issuance_pg.session_principal(conn, token, now)

    def _sync_session_principal(self, token: str, now: datetime) -> Principal:
        with Session(self.engine) as session:
            return authenticate_session(session, token, now)

    async def signer(self, keys: ServiceKeys, now: datetime) -> Signer:
        """The active signer. The first call opens (in development, makes) the key ring,
        reading and decrypting files: in a worker thread, not on the event loop. Later calls
        only check the ring file's time stamp."""
        if self._keys_loaded:
            return keys.signer(now)
        signer = await run_in_threadpool(keys.signer, now)
        self._keys_loaded = True
        return signer

    async def issue_for_resident(
        self,
        actor: Principal,
        request: issuance.CertificateRequest,
        signer: Signer,
        now: datetime,
    ) -> issuance.IssuedView:
        if self.pool is None:
            return await run_in_threadpool(self._sync_issue, actor, request, signer, now)
        pool = await self._pool()
        async with pool.connection() as conn:
            return await issuance_pg.issue_for_resident(
                conn, actor=actor, request=request, signer=signer, now=now
            )

    def _sync_issue(
        self,
        actor: Principal,
        request: issuance.CertificateRequest,
        signer: Signer,
        now: datetime,
    ) -> issuance.IssuedView:
        with Session(self.engine, expire_on_commit=False) as session:
            return issuance.issue_for_resident(
                session, actor=actor, request=request, signer=signer, now=now
            )
