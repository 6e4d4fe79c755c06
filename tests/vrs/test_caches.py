"""The short-lived caches: credentials (every route) and places (the PostgreSQL fast path).

A worker trusts what it read for ``cache_ttl`` seconds: a revocation or deactivation takes
effect within that time and not later. Time is a fake monotonic clock the tests move.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import select

from tests.conftest import Clock, World
from tests.vrs.dose_support import add_lots, body, line
from vrs.api.deps import PrincipalCache
from vrs.app import create_app
from vrs.db.models import Credential, Device
from vrs.db.pgpool import PlanRefresher, conninfo
from vrs.domain.auth import SYSTEM, Principal, Role, hash_token, revoke_credential
from vrs.settings import Settings

TTL = 30.0


@dataclass
class Ticker:
    """A monotonic clock in seconds that moves only when told."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


TABLET = Principal(
    credential_id=uuid.uuid4(), role=Role.SITE, name="tablet 1", site_code="1310000017"
)


# ---------------------------------------------------------------------------------------
# PrincipalCache


def test_a_cached_principal_is_served_until_its_ttl_has_passed() -> None:
    ticker = Ticker()
    cache = PrincipalCache(ttl=TTL, clock=ticker)
    cache.put("key", TABLET)
    ticker.advance(TTL - 0.001)
    assert cache.get("key") is TABLET
    ticker.advance(0.001)
    assert cache.get("key") is None  # expired: the caller reads the credential again
    cache.put("key", TABLET)
    assert cache.get("key") is TABLET  # and trusts the fresh read for another ttl


def test_with_a_ttl_of_zero_nothing_is_cached() -> None:
    cache = PrincipalCache(ttl=0, clock=Ticker())
    cache.put("key", TABLET)
    assert cache.get("key") is None


def test_an_unknown_key_is_not_served() -> None:
    cache = PrincipalCache(ttl=TTL, clock=Ticker())
    cache.put("key", TABLET)
    assert cache.get("other") is None


# ---------------------------------------------------------------------------------------
# Through the API


@dataclass
class Cached:
    app: FastAPI
    client: TestClient
    ticker: Ticker


@pytest.fixture
def cached(settings: Settings, world: World, clock: Clock) -> Iterator[Cached]:
    """The service with caches on (``cache_ttl=TTL``), both on the fake clock."""
    app = create_app(settings, engine=world.engine, clock=clock, cache_ttl=TTL)
    ticker = Ticker()
    app.state.principal_cache.clock = ticker
    app.state.ingestor.places.clock = ticker
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Cached(app, client, ticker)


def _list(cached: Cached, world: World) -> httpx.Response:
    return cached.client.get(
        "/v1/dose-records", params={"coupon": line(1)}, headers=world.headers("municipality")
    )


def _revoke(world: World, who: str) -> None:
    with world.session() as s:
        credential = s.execute(
            select(Credential).where(Credential.token_hash == hash_token(world.tokens[who]))
        ).scalar_one()
        revoke_credential(s, actor=SYSTEM, credential_id=credential.id, now=Clock().now)
        s.commit()


def test_a_revoked_credential_works_for_at_most_the_ttl(cached: Cached, world: World) -> None:
    assert _list(cached, world).status_code == 200
    _revoke(world, "municipality")
    cached.ticker.advance(TTL - 1)
    assert _list(cached, world).status_code == 200  # this worker read it before the revocation
    cached.ticker.advance(1)
    refused = _list(cached, world)
    assert refused.status_code == 401
    assert refused.json()["code"] == "BAD_TOKEN"


def test_a_credential_revoked_before_its_first_use_is_refused_at_once(
    cached: Cached, world: World
) -> None:
    _revoke(world, "municipality")
    refused = _list(cached, world)
    assert refused.status_code == 401
    assert refused.json()["code"] == "BAD_TOKEN"


# ---------------------------------------------------------------------------------------
# PlaceCache (PostgreSQL fast path)


def _post(cached: Cached, world: World, serial: int) -> httpx.Response:
    return cached.client.post(
        "/v1/dose-records", json=body(serial=serial), headers=world.headers("site")
    )


def _deactivate_tablets(world: World) -> None:
    with world.session() as s:
        s.execute(update(Device).values(active=False))
        s.commit()


def test_a_deactivated_tablet_is_refused_once_its_place_entry_expires(
    backend: str, cached: Cached, world: World
) -> None:
    if backend != "postgresql":
        pytest.skip("the place cache serves the PostgreSQL fast path only")
    add_lots(world)
    assert _post(cached, world, 1).status_code == 201
    assert cached.app.state.ingestor.pool is not None  # the fast path, with its place cache
    _deactivate_tablets(world)
    cached.ticker.advance(TTL - 1)
    assert _post(cached, world, 2).status_code == 201  # still trusted from the cache
    cached.ticker.advance(1)
    refused = _post(cached, world, 3)
    assert refused.status_code == 403
    assert refused.json()["code"] == "DEVICE_NOT_ENROLLED"


def test_the_portable_path_refuses_a_deactivated_tablet_at_once(
    settings: Settings, world: World, clock: Clock
) -> None:
    add_lots(world)
    app = create_app(
        settings, engine=world.engine, clock=clock, cache_ttl=TTL, ingest_fast_path=False
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        first = client.post("/v1/dose-records", json=body(serial=1), headers=world.headers("site"))
        assert first.status_code == 201
        _deactivate_tablets(world)
        refused = client.post(
            "/v1/dose-records", json=body(serial=2), headers=world.headers("site")
        )
    assert refused.status_code == 403
    assert refused.json()["code"] == "DEVICE_NOT_ENROLLED"


# ---------------------------------------------------------------------------------------
# PlanRefresher (the fast paths' pools)


def test_pooled_connections_drop_their_prepared_plans_ever_less_often(
    backend: str, world: World
) -> None:
    """Generic plans made on a tiny table are made again: after 1 s, 2 s later, 4 s, ...
    up to once a minute, on the real server; psycopg prepares the statement again."""
    if backend != "postgresql":
        pytest.skip("the fast paths' pools, and their prepared statements, are PostgreSQL's")
    ticker = Ticker()
    refresher = PlanRefresher(clock=ticker)

    async def scenario() -> list[int]:
        conn = await psycopg.AsyncConnection.connect(
            conninfo(world.engine.url), prepare_threshold=0
        )
        held: list[int] = []  # statements the server holds when the pool hands conn out

        async def use() -> None:
            await refresher(conn)  # as the pool does on handing the connection out
            cur = await conn.execute("SELECT count(*) FROM pg_prepared_statements", prepare=False)
            row = await cur.fetchone()
            assert row is not None
            held.append(int(row[0]))
            await conn.execute("SELECT count(*) FROM municipality WHERE code = %s", ["131016"])
            await conn.commit()  # (a rollback would make psycopg drop its statements itself)

        try:
            await use()
            for step in (0.9, 0.1, 1.9, 0.1, 3.9, 0.1):
                ticker.advance(step)
                await use()
            for _ in range(4):
                ticker.advance(PlanRefresher.LONGEST)
                await use()
        finally:
            await conn.close()
        return held

    held = asyncio.run(scenario())
    # t = 0, 0.9, 1 (dropped), 2.9, 3 (dropped), 6.9, 7 (dropped), then every minute.
    assert held == [0, 1, 0, 1, 0, 1, 0] + [0] * 4
    assert {interval for _, interval in refresher._due.values()} == {PlanRefresher.LONGEST}
