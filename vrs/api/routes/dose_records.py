"""Dose records: posts from site tablets (one or a batch) and the municipality's listing."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from vrs.api.deps import CurrentPrincipal, NowDep, SessionDep
from vrs.api.errors import problem_document
from vrs.api.ingestor import Ingestor
from vrs.api.responses import FastJSONResponse
from vrs.domain import doses

router = APIRouter(tags=["dose records"])


class DoseRecordCreate(BaseModel):
    """A dose as a tablet posts it. Field contents are checked by the domain rules, which
    answer with stable codes (``MALFORMED_COUPON``, ``BAD_LOT``, ...)."""

    model_config = ConfigDict(extra="ignore")

    client_record_id: str = Field(description="UUID the tablet gave the record; retries reuse it")
    coupon: str = Field(description="the coupon's 18-digit line")
    vaccinated_on: str = Field(description="YYYY-MM-DD")
    product: str = Field(description="EU product code, e.g. EU/1/20/1528")
    lot: str
    site_code: str = Field(description="10-digit medical-institution code")
    source: str = Field(description="qr, ocr, manual or csv")
    doctor_name: str | None = None


class FlagPublic(BaseModel):
    rule_code: str
    severity: str
    message: str


class DoseRecordPublic(BaseModel):
    id: uuid.UUID
    municipality_code: str
    coupon_number: str
    dose_number: int
    resident_local_id: str | None
    vaccinated_on: date
    product: str
    lot: str
    site_code: str
    source: str
    client_record_id: uuid.UUID | None
    status: str
    locked: bool
    version: int
    registered_at: datetime
    flags: list[FlagPublic]


class DoseRecordList(BaseModel):
    records: list[DoseRecordPublic]


class DoseBatchCreate(BaseModel):
    """Up to 1,000 records; each is checked and answered on its own."""

    records: list[Any]


class BatchItemPublic(BaseModel):
    index: int
    status: int
    record: DoseRecordPublic | None = None
    error: dict[str, Any] | None = None


class DoseBatchResult(BaseModel):
    results: list[BatchItemPublic]


_STATUS_OF = {doses.Outcome.CREATED: 201, doses.Outcome.EXISTING: 200}


@router.post(
    "/dose-records",
    status_code=201,
    response_model=DoseRecordPublic,
    responses={200: {"description": "a retry: the stored record"}},
)
async def post_dose_record(
    record: DoseRecordCreate, request: Request, principal: CurrentPrincipal, now: NowDep
) -> Response:
    """Record one dose: 201 stored, 200 already stored (a retry), 409 conflict."""
    ingestor: Ingestor = request.app.state.ingestor
    result = await ingestor.one(principal, record.model_dump(), now)
    # The domain view is already the public shape; validating it again as a model would
    # cost a tablet's post more than its own checks (docs/benchmarks.md).
    return FastJSONResponse(result.record.as_wire(), status_code=_STATUS_OF[result.outcome])


@router.post("/dose-records/batch", response_model=DoseBatchResult)
async def post_dose_batch(
    batch: DoseBatchCreate, request: Request, principal: CurrentPrincipal, now: NowDep
) -> Response:
    """Record up to 1,000 doses; each answer carries the status a single post would get."""
    ingestor: Ingestor = request.app.state.ingestor
    items = await ingestor.batch(principal, batch.records, now)
    # Plain dicts: validating a thousand response models again would cost more than the
    # database work of the batch.
    return FastJSONResponse({"results": [_batch_item(item) for item in items]})


def _batch_item(item: doses.BatchItem) -> dict[str, Any]:
    if item.result is not None:
        return {
            "index": item.index,
            "status": _STATUS_OF[item.result.outcome],
            "record": item.result.record.as_wire(),
        }
    assert item.error is not None
    error = problem_document(item.error)
    return {"index": item.index, "status": error["status"], "error": error}


@router.get("/dose-records", response_model=DoseRecordList)
def list_dose_records(
    session: SessionDep,
    principal: CurrentPrincipal,
    now: NowDep,
    coupon: str = Query(max_length=40, description="18-digit line or 10-digit coupon number"),
    municipality: str | None = Query(default=None, max_length=10),
) -> DoseRecordList:
    """The records of one coupon with their open flags (admin; municipality: its own)."""
    views = doses.list_records(session, principal, coupon, municipality, now)
    return DoseRecordList(records=[DoseRecordPublic.model_validate(v.as_dict()) for v in views])
