"""The application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import Engine

from vrs.api.certifier import Certifier
from vrs.api.deps import CardIssuerTrust, PrincipalCache
from vrs.api.errors import install_error_handlers
from vrs.api.ingestor import Ingestor
from vrs.api.limits import BodySizeLimit
from vrs.api.routes import health
from vrs.db.engine import make_engine
from vrs.domain.identity import IdentityVerifier
from vrs.domain.keyring import ServiceKeys
from vrs.domain.resident_auth import AuthPolicy
from vrs.domain.trust import TrustPublisher
from vrs.settings import Settings
from vrs.web import router as web_router

#: JSON bodies (a batch of 1,000 records is about 250 KB) stay far below this.
JSON_BODY_LIMIT = 4 * 1024 * 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = utc_now,
    cache_ttl: float = 10.0,
    ingest_fast_path: bool | None = None,
    certificate_fast_path: bool | None = None,
    identity_verifier: IdentityVerifier | None = None,
    auth_policy: AuthPolicy | None = None,
    keys: ServiceKeys | None = None,
    freeze_start_up: bool = False,
) -> FastAPI:
    """Build the service. Nothing connects until the first request.

    ``cache_ttl``: how long a worker trusts what it read of credentials, tablets, sites and
    municipalities (a revocation or deactivation takes effect within it). ``ingest_fast_path``:
    on PostgreSQL, take tablets' posts through the asynchronous psycopg path (the default);
    off, through the portable SQLAlchemy path that every other engine uses (None: as
    ``settings.ingest_fast_path`` says); ``certificate_fast_path`` likewise for residents'
    ``POST /v1/certificates`` and session look-ups (``settings.certificate_fast_path``).
    ``identity_verifier``: how residents prove who they
    are (default: cards of the issuer in ``settings.card_issuer_cert``); ``auth_policy``:
    challenge and session lifetimes and the sign-in rate limits; ``keys``: the signing keys
    (default: the key ring under ``settings.data_dir``, made on first use outside production).
    ``freeze_start_up``: move what exists at start-up out of the garbage collector's sight
    (a served process; :func:`app_from_env`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if freeze_start_up:
            # What start-up made (modules, routes, models) lives as long as the process:
            # frozen, the collector's passes no longer walk it each time the objects of a
            # batch of a thousand records trigger one; that took 40 % of the server's CPU
            # for batch ingest (docs/benchmarks.md). Only for a served process: a test run
            # builds hundreds of apps in one process and must not keep their garbage.
            gc.collect()
            gc.freeze()
        yield
        await app.state.ingestor.close()
        await app.state.certifier.close()

    app = FastAPI(
        title="VRS — vaccination record service",
        version="0.1.0",
        description="Residents, coupons, sites and dose records; see docs/ for the guide.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine if engine is not None else make_engine(settings.database_url)
    app.state.clock = clock
    app.state.principal_cache = PrincipalCache(ttl=cache_ttl)
    app.state.identity_verifier = identity_verifier or CardIssuerTrust(settings)
    app.state.auth_policy = auth_policy or AuthPolicy()
    app.state.keys = keys if keys is not None else ServiceKeys(settings)
    app.state.trust = TrustPublisher(app.state.keys)
    fast_path = settings.ingest_fast_path if ingest_fast_path is None else ingest_fast_path
    app.state.ingestor = Ingestor(app.state.engine, cache_ttl=cache_ttl, fast_path=fast_path)
    certify_fast = (
        settings.certificate_fast_path if certificate_fast_path is None else certificate_fast_path
    )
    app.state.certifier = Certifier(app.state.engine, fast_path=certify_fast)
    install_error_handlers(app)
    app.include_router(health.router)
    _include_v1_routers(app)
    app.include_router(web_router)
    app.add_middleware(
        BodySizeLimit,
        default_limit=JSON_BODY_LIMIT,
        import_limit=settings.max_import_bytes,
    )
    return app


def app_from_env() -> FastAPI:
    """The service configured from ``VRS_*`` variables (uvicorn's ``--factory`` entry point)."""
    return create_app(Settings.from_env(), freeze_start_up=True)


def _include_v1_routers(app: FastAPI) -> None:
    import importlib
    import pkgutil

    from vrs.api import routes

    for info in pkgutil.iter_modules(routes.__path__):
        if info.name == "health":
            continue
        module = importlib.import_module(f"{routes.__name__}.{info.name}")
        app.include_router(module.router, prefix="/v1")
