"""FastAPI dependencies as ``Annotated`` aliases: a route's signature reads as its needs.

The cheap dependencies are ``async`` so that an ``async`` route pays no thread hand-off for
them; only the database session (used by the synchronous routes) runs in the threadpool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from vrs.domain.auth import Principal, authenticate, hash_token
from vrs.domain.errors import Unauthenticated
from vrs.settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


async def get_now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
NowDep = Annotated[datetime, Depends(get_now)]


class PrincipalCache:
    """Recently authenticated credentials, by token hash, for ``ttl`` seconds.

    A tablet posts many records a minute; looking its credential up once per ``ttl`` instead
    of once per request takes a round trip off the hot path. The price: a revoked token keeps
    working for at most ``ttl`` seconds in a worker that saw it just before.
    """

    def __init__(
        self,
        ttl: float = 10.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    def put(self, key: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (self.clock() + self.ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _lookup_principal(engine: Engine, token: str) -> Principal:
    with Session(engine) as session:
        return authenticate(session, token)


async def get_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("MISSING_TOKEN", "send 'Authorization: Bearer <token>'")
    cache: PrincipalCache = request.app.state.principal_cache
    key = hash_token(token)
    principal = cache.get(key)
    if principal is None:
        principal = await run_in_threadpool(_lookup_principal, request.app.state.engine, token)
        cache.put(key, principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
