"""Printable coupon sheets: PDF for a batch, PNG for one ticket."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from vrs.api.deps import CurrentPrincipal, NowDep, SessionDep
from vrs.domain import coupon_sheets
from vrs.domain.rules import today_in_japan

router = APIRouter(tags=["coupons"])


class CouponPrintCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dose: int = Field(description="the dose the tickets are for (1-9)")
    format: Literal["pdf", "png"] = "pdf"
    local_ids: list[str] | None = Field(
        default=None, description="residents to print; omitted: every resident with a number"
    )
    limit: int = Field(default=1000, description="most tickets in one sheet (up to 10,000)")


@router.post(
    "/municipalities/{code}/coupons/print",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/png": {}}}},
)
def print_coupons(
    code: str,
    request: CouponPrintCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    now: NowDep,
) -> Response:
    """Coupon tickets for one dose: an A4 PDF (ten tickets a page) or one ticket as PNG."""
    sheet = coupon_sheets.coupon_sheet(
        session,
        actor=principal,
        municipality_code=code,
        dose=request.dose,
        local_ids=request.local_ids,
        limit=request.limit,
        now=now,
    )
    issued_on = today_in_japan(now)
    if request.format == "png":
        return Response(
            coupon_sheets.ticket_png(sheet, issued_on=issued_on), media_type="image/png"
        )
    return Response(
        coupon_sheets.sheet_pdf(sheet, issued_on=issued_on), media_type="application/pdf"
    )
