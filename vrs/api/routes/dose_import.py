"""Bulk dose import: the paper forms of a municipality as one CSV file, all or nothing."""

from __future__ import annotations

from typing import BinaryIO

from fastapi import APIRouter, Request
from pydantic import BaseModel

from vrs.api.deps import CurrentPrincipal, NowDep, SessionDep, SettingsDep
from vrs.api.uploads import CSV_REQUEST_BODY, import_csv
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
    openapi_extra=CSV_REQUEST_BODY,
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

    def authorise() -> None:
        dose_import.authorise_dose_import(session, actor=principal, municipality_code=code)

    def run(body: BinaryIO) -> dose_import.DoseImportResult:
        return dose_import.import_doses(
            session, actor=principal, municipality_code=code, body=body, settings=settings, now=now
        )

    result = await import_csv(request, settings.data_dir / "tmp", authorise=authorise, run=run)
    return DoseImportResultPublic.model_validate(result, from_attributes=True)
