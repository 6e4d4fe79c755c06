"""History look-up for residents who moved in: doses recorded in other municipalities."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from vrs.api.deps import CurrentPrincipal, NowDep, SessionDep, SettingsDep
from vrs.api.responses import FastJSONResponse
from vrs.domain import history

router = APIRouter(tags=["residents"])


class HistoryLookupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(max_length=2000, description="why the history is needed (audit-logged)")
    my_numbers: list[str] | None = Field(default=None, description="up to 100,000 My Numbers")
    local_ids: list[str] | None = Field(
        default=None, description="or up to 100,000 local ids of residents with a My Number"
    )


class ForeignDosePublic(BaseModel):
    municipality_code: str
    dose_number: int
    vaccinated_on: date
    product: str
    lot: str


class LookupEntryPublic(BaseModel):
    index: int
    status: str
    local_id: str | None = None
    doses: list[ForeignDosePublic]


class LookupResultPublic(BaseModel):
    results: list[LookupEntryPublic]
    found: int
    withheld: int
    doses: int
    linked: int


def _entry(entry: history.LookupEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": entry.index,
        "status": entry.status,
        "doses": [
            {
                "municipality_code": d.municipality_code,
                "dose_number": d.dose_number,
                "vaccinated_on": d.vaccinated_on.isoformat(),
                "product": d.product_code,
                "lot": d.lot_number,
            }
            for d in entry.doses
        ],
    }
    if entry.local_id is not None:
        out["local_id"] = entry.local_id
    return out


@router.post("/municipalities/{code}/history-lookup", response_model=LookupResultPublic)
async def lookup_history(
    code: str,
    lookup: HistoryLookupCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Doses recorded elsewhere for My Numbers (or residents' local ids); audit-logged."""
    result = await run_in_threadpool(
        history.lookup_history,
        session,
        actor=principal,
        municipality_code=code,
        purpose=lookup.purpose,
        my_numbers=lookup.my_numbers,
        local_ids=lookup.local_ids,
        hmac_key=settings.my_number_hmac_key,
        now=now,
    )
    return FastJSONResponse(
        {
            "results": [_entry(e) for e in result.entries],
            "found": result.found,
            "withheld": result.withheld,
            "doses": result.doses,
            "linked": result.linked,
        }
    )
