"""The framework ceiling: FastAPI + uvicorn parsing and validating a dose-record body, no database.

Run: ``uvicorn --factory benchmarks.ceiling_app:make_app --port 8001`` and drive it with
``benchmarks/wrk/post_dose.lua`` (see benchmarks/README.md). Whatever the real ingest path
reaches is compared with this figure.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from fastapi import FastAPI
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
