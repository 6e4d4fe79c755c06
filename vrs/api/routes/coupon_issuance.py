"""Coupon numbers issued by a municipality to its residents."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from vrs.api.deps import CurrentPrincipal, NowDep, SessionDep
from vrs.domain import coupon_issuance

router = APIRouter(tags=["coupons"])


class CouponIssueCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    local_ids: list[str] | None = Field(
        default=None, description="residents to issue to; omitted: residents without a number"
    )
    limit: int = Field(
        default=10_000, description="most residents served when local_ids is omitted"
    )


class IssuedCouponPublic(BaseModel):
    local_id: str
    coupon_number: str


class IssuancePublic(BaseModel):
    issued: list[IssuedCouponPublic]
    already_issued: list[str]
    remaining: int


@router.post("/municipalities/{code}/coupons", response_model=IssuancePublic)
def issue_coupons(
    code: str,
    request: CouponIssueCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    now: NowDep,
) -> IssuancePublic:
    """Issue coupon numbers (9-digit serial + Damm check digit) to residents without one."""
    result = coupon_issuance.issue_coupons(
        session,
        actor=principal,
        municipality_code=code,
        local_ids=request.local_ids,
        limit=request.limit,
        now=now,
    )
    return IssuancePublic.model_validate(result, from_attributes=True)
