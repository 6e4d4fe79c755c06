"""Ceilings the ingest path is compared with: FastAPI + uvicorn with no database, and one raw
psycopg INSERT per request.

- ``make_app``: parses and validates a dose-record body in an ``async`` route, no database.
- ``make_sync_app``: the same in a plain ``def`` route (FastAPI runs it in its threadpool).
- ``make_raw_pg_app``: the ``async`` route plus one autocommitted ``INSERT`` through a psycopg
  ``AsyncConnectionPool`` (database from ``VRS_DATABASE_URL``; table ``ceiling_dose`` is made
  on start-up): the cheapest way a record can reach PostgreSQL from this framework.

Run one with ``uvicorn --factory benchmarks.ceiling_app:make_app --port 8001`` and drive it
with ``benchmarks/wrk/post_dose.lua`` (see benchmarks/README.md).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Literal

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field


class DoseIn(BaseModel):
    client_record_id: uuid.UUID
    coupon: str = Field(pattern=r"^[0-9]{18}$")
    vaccinated_on: date
    product: str = Field(max_length=40)
    lot: str = Field(max_length=40)
    site_code: str = Field(pattern=r"^[0-9]{10}$")
    source: Literal["qr", "ocr", "manual", "csv"]


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/dose-records", status_code=201)
    async def post_dose(record: DoseIn) -> DoseIn:
        return record

    return app


def make_sync_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/dose-records", status_code=201)
    def post_dose(record: DoseIn) -> DoseIn:
        return record

    return app


_TABLE = """
CREATE TABLE IF NOT EXISTS ceiling_dose (
    id uuid PRIMARY KEY, client_record_id uuid UNIQUE, coupon text, vaccinated_on date,
    product text, lot text, site_code text, source text)
"""
_INSERT = """
INSERT INTO ceiling_dose VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""


def make_raw_pg_app() -> FastAPI:
    url = os.environ.get("VRS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    pool = AsyncConnectionPool(
        url, min_size=4, max_size=16, open=False, kwargs={"autocommit": True}
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        async with pool.connection() as conn:
            await conn.execute(_TABLE)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/dose-records", status_code=201)
    async def post_dose(record: DoseIn) -> DoseIn:
        async with pool.connection() as conn:
            await conn.execute(_INSERT, (
                uuid.uuid4(), record.client_record_id, record.coupon, record.vaccinated_on,
                record.product, record.lot, record.site_code, record.source,
            ))  # fmt: skip
        return record

    return app
