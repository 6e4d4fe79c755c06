"""The masked coupon preview for site tablets."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel

from vrs.api.deps import CurrentPrincipal, NowDep, SessionDep
from vrs.domain.preview import coupon_preview

router = APIRouter(tags=["coupons"])


class RecordedDosePublic(BaseModel):
    dose_number: int
    vaccinated_on: date


class CouponPreviewPublic(BaseModel):
    municipality_code: str
    coupon_dose_number: int
    kana_initials: str
    birth_year_month: str
    recorded_doses: list[RecordedDosePublic]


@router.get("/coupons/{line}/preview", response_model=CouponPreviewPublic)
def preview_coupon(
    line: str, session: SessionDep, principal: CurrentPrincipal, now: NowDep
) -> CouponPreviewPublic:
    """Initials of the kana name and birth year-month, to confirm the coupon's holder."""
    preview = coupon_preview(session, principal, line, now)
    return CouponPreviewPublic(
        municipality_code=preview.municipality_code,
        coupon_dose_number=preview.coupon_dose_number,
        kana_initials=preview.kana_initials,
        birth_year_month=preview.birth_year_month,
        recorded_doses=[
            RecordedDosePublic(dose_number=d.dose_number, vaccinated_on=d.vaccinated_on)
            for d in preview.recorded_doses
        ],
    )
