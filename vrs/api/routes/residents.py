"""Residents of a municipality: the CSV import and the audited read of one resident."""

from __future__ import annotations

from datetime import date, datetime
from typing import BinaryIO

from fastapi import APIRouter, Request
from pydantic import BaseModel

from vrs.api.deps import CurrentPrincipal, NowDep, SessionDep, SettingsDep
from vrs.api.uploads import CSV_REQUEST_BODY, import_csv
from vrs.domain import residents

router = APIRouter(tags=["residents"])


class ImportResultPublic(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    matched_pending_doses: int


class ResidentPublic(BaseModel):
    """A resident; the My Number is never returned, only whether one is on file."""

    municipality_code: str
    local_id: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: date
    sex: str
    coupon_number: str | None
    address: str
    protected: bool
    has_my_number: bool
    created_at: datetime
    updated_at: datetime


@router.post(
    "/municipalities/{code}/residents/import",
    response_model=ImportResultPublic,
    openapi_extra=CSV_REQUEST_BODY,
)
async def import_residents(
    code: str,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    now: NowDep,
) -> ImportResultPublic:
    """Import the municipality's resident register (UTF-8 CSV, all or nothing)."""

    def authorise() -> None:
        residents.authorise_import(session, actor=principal, municipality_code=code)

    def run(body: BinaryIO) -> residents.ImportResult:
        return residents.import_residents(
            session, actor=principal, municipality_code=code, body=body, settings=settings, now=now
        )

    result = await import_csv(request, settings.data_dir / "tmp", authorise=authorise, run=run)
    return ImportResultPublic.model_validate(result, from_attributes=True)


@router.get("/municipalities/{code}/residents/{local_id}", response_model=ResidentPublic)
def read_resident(
    code: str, local_id: str, session: SessionDep, principal: CurrentPrincipal, now: NowDep
) -> ResidentPublic:
    """One resident (admin or that municipality); every read is audit-logged."""
    view = residents.read_resident(
        session, actor=principal, municipality_code=code, local_id=local_id, now=now
    )
    return ResidentPublic.model_validate(view, from_attributes=True)
