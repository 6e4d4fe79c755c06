"""FastAPI dependencies as ``Annotated`` aliases: a route's signature reads as its needs.

The cheap dependencies are ``async`` so that an ``async`` route pays no thread hand-off for
them; only the database session (used by the synchronous routes) runs in the threadpool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from vrs.devcard import issuer_certificate_path
from vrs.domain.auth import Principal, authenticate, hash_token
from vrs.domain.errors import Unauthenticated, Unavailable
from vrs.domain.identity import IdentityVerifier, MyNumberCardVerifier
from vrs.domain.keyring import ServiceKeys
from vrs.domain.resident_auth import SESSION_PREFIX
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


def _lookup_principal(engine: Engine, token: str, now: datetime) -> Principal:
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
    now = await get_now(request)
    principal = cache.get(key)
    if principal is None:
        if token.startswith(SESSION_PREFIX):  # on PostgreSQL, read on the fast path's pool
            principal = await request.app.state.certifier.session_principal(token, now)
        else:
            principal = await run_in_threadpool(
                _lookup_principal, request.app.state.engine, token, now
            )
        cache.put(key, principal)
    if principal.expires_at is not None and principal.expires_at <= now:
        raise Unauthenticated("SESSION_EXPIRED", "the session has expired; sign in again")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


class CardIssuerTrust:
    """The card verifier from the configured issuer certificate, re-read when the file changes.

    Outside production with no ``VRS_CARD_ISSUER_CERT``, the development issuer's certificate
    under the data directory is used once ``vrs dev make-card`` has made it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loaded: tuple[Path, float, MyNumberCardVerifier] | None = None
        self._lock = threading.Lock()

    def _path(self) -> Path:
        if self.settings.card_issuer_cert is not None:
            return self.settings.card_issuer_cert
        if self.settings.is_production:
            raise Unavailable(
                "CARD_ISSUER_NOT_CONFIGURED",
                "resident sign-in needs VRS_CARD_ISSUER_CERT (the card issuer's certificate)",
            )
        return issuer_certificate_path(self.settings.data_dir)

    def verifier(self) -> IdentityVerifier:
        path = self._path()
        try:
            mtime = path.stat().st_mtime
        except OSError:
            raise Unavailable(
                "CARD_ISSUER_NOT_CONFIGURED",
                f"no card issuer certificate at {path} (development: run `vrs dev make-card`)",
            ) from None
        loaded = self._loaded
        if loaded is not None and loaded[0] == path and loaded[1] == mtime:
            return loaded[2]
        with self._lock:
            try:
                verifier = MyNumberCardVerifier.from_pem(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise Unavailable(
                    "CARD_ISSUER_NOT_CONFIGURED", f"the card issuer certificate is unusable: {exc}"
                ) from None
            self._loaded = (path, mtime, verifier)
        return verifier


async def get_identity_verifier(request: Request) -> IdentityVerifier:
    source: IdentityVerifier | CardIssuerTrust = request.app.state.identity_verifier
    if isinstance(source, CardIssuerTrust):
        return source.verifier()
    return source


IdentityVerifierDep = Annotated[IdentityVerifier, Depends(get_identity_verifier)]


async def get_client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


ClientAddressDep = Annotated[str, Depends(get_client_address)]


async def get_keys(request: Request) -> ServiceKeys:
    keys: ServiceKeys = request.app.state.keys
    return keys


KeysDep = Annotated[ServiceKeys, Depends(get_keys)]
