"""Bulk dose import: the paper forms of a municipality as one CSV file, all or nothing."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from vrs.api.deps import CurrentPrincipal, NowDep, SessionDep, SettingsDep
from vrs.api.uploads import require_csv, spooled_body
from vrs.domain import dose_import

router = APIRouter(tags=["dose records"])


class DoseImportResultPublic(BaseModel):
    rows: int
    created: int
    unchanged: int
    pending: int
    flagged: int


@router.post(
    "/municipalities/{code}/dose-records/import",
    response_model=DoseImportResultPublic,
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_dose_records(
    code: str,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    now: NowDep,
) -> DoseImportResultPublic:
    """Import dose records keyed from paper forms (UTF-8 CSV, all or nothing)."""
    await run_in_threadpool(
        dose_import.authorise_dose_import, session, actor=principal, municipality_code=code
    )
    require_csv(request)
    async with spooled_body(request, settings.data_dir / "tmp") as body:
        result = await run_in_threadpool(
            dose_import.import_doses,
            session,
            actor=principal,
            municipality_code=code,
            body=body,
            settings=settings,
            now=now,
        )
    return DoseImportResultPublic.model_validate(result, from_attributes=True)
