"""The signed-in resident's own view: names (with the passport-spelling suggestion), doses
and certificates."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from vrs.api.deps import CurrentPrincipal, NowDep, SessionDep
from vrs.domain import own_records

router = APIRouter(tags=["resident self-service"])


class OwnDosePublic(BaseModel):
    dose_number: int
    vaccinated_on: date
    product: str
    product_name: str
    lot: str
    municipality_code: str
    status: str
    open_flags: int


class OwnCertificatePublic(BaseModel):
    uvci: str
    kind: str
    dose_number: int
    issued_at: datetime
    expires_at: datetime
    status: str


class OwnRecordsPublic(BaseModel):
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: date
    suggested_family: str = Field(description="passport-Hepburn suggestion from the kana")
    suggested_given: str
    protected: bool
    doses: list[OwnDosePublic]
    certificates: list[OwnCertificatePublic]


@router.get("/me", response_model=OwnRecordsPublic)
def read_own_records(
    session: SessionDep, principal: CurrentPrincipal, now: NowDep
) -> OwnRecordsPublic:
    """The signed-in resident's names, doses (every municipality) and certificates."""
    view = own_records.own_records(session, actor=principal, now=now)
    return OwnRecordsPublic.model_validate(view, from_attributes=True)
