"""A municipality's work on its dose records: review queue, corrections, verify, void, history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from vrs.api.deps import CurrentPrincipal, NowDep, SessionDep
from vrs.api.routes.dose_records import DoseRecordPublic
from vrs.domain import corrections, review

router = APIRouter(tags=["review and corrections"])


class CorrectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(description="the record version the correction was made against")
    reason: str = Field(max_length=2000)
    changes: dict[str, Any] = Field(
        description="new values: coupon_number, dose_number, vaccinated_on, product, lot, "
        "site_code, doctor_name"
    )


class VerifyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int


class VoidCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    reason: str = Field(max_length=2000)


class ResolveCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(description="conflict: keep_stored or take_incoming; flag: dismiss")
    reason: str = Field(max_length=2000)


class ChangePublic(BaseModel):
    record: DoseRecordPublic
    revoked_certificates: int


class SeriesEntryPublic(BaseModel):
    id: uuid.UUID
    dose_number: int
    vaccinated_on: date
    product: str
    lot: str
    site_code: str
    status: str


class ReviewItemPublic(BaseModel):
    flag_id: uuid.UUID
    rule_code: str
    severity: str
    message: str
    details: dict[str, Any]
    flagged_at: datetime
    record: DoseRecordPublic
    series: list[SeriesEntryPublic]


class ReviewPagePublic(BaseModel):
    total: int
    items: list[ReviewItemPublic]


class EventPublic(BaseModel):
    id: uuid.UUID
    kind: str
    at: datetime
    actor_credential_id: uuid.UUID | None
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class HistoryPublic(BaseModel):
    record: DoseRecordPublic
    events: list[EventPublic]


def _change(change: corrections.Change) -> ChangePublic:
    return ChangePublic(
        record=DoseRecordPublic.model_validate(change.record.as_dict()),
        revoked_certificates=change.revoked_certificates,
    )


@router.get("/municipalities/{code}/review", response_model=ReviewPagePublic)
def list_review(
    code: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    now: NowDep,
    rule: list[str] = Query(default=[], description="rule codes"),
    severity: str | None = Query(default=None, description="flag or conflict"),
    site: str | None = Query(default=None, max_length=10),
    date_from: str | None = Query(default=None, alias="from", max_length=10),
    date_to: str | None = Query(default=None, alias="to", max_length=10),
    limit: int = Query(default=100),
    offset: int = Query(default=0),
) -> ReviewPagePublic:
    """Open flags and conflicts with their records and what the rule saw, oldest first."""
    filters = review.parse_filter(
        rule=rule,
        severity=severity,
        site=site,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
        offset=offset,
    )
    page = review.review_queue(
        session, actor=principal, municipality_code=code, filters=filters, now=now
    )
    return ReviewPagePublic(
        total=page.total,
        items=[
            ReviewItemPublic(
                flag_id=item.flag_id,
                rule_code=item.rule_code,
                severity=item.severity,
                message=item.message,
                details=item.details,
                flagged_at=item.flagged_at,
                record=DoseRecordPublic.model_validate(item.record.as_dict()),
                series=[
                    SeriesEntryPublic(
                        id=s.id,
                        dose_number=s.dose_number,
                        vaccinated_on=s.vaccinated_on,
                        product=s.product_code,
                        lot=s.lot_number,
                        site_code=s.site_code,
                        status=s.status,
                    )
                    for s in item.series
                ],
            )
            for item in page.items
        ],
    )


@router.post("/municipalities/{code}/review/{flag_id}/resolve", response_model=ChangePublic)
def resolve_flag(
    code: str,
    flag_id: str,
    decision: ResolveCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    now: NowDep,
) -> ChangePublic:
    """Decide a conflict (keep_stored, take_incoming) or dismiss a flag, with a reason."""
    change = review.resolve_flag(
        session,
        actor=principal,
        municipality_code=code,
        flag_id=flag_id,
        action=decision.action,
        reason=decision.reason,
        now=now,
    )
    return _change(change)


@router.post(
    "/municipalities/{code}/dose-records/{record_id}/corrections", response_model=ChangePublic
)
def correct_record(
    code: str,
    record_id: str,
    correction: CorrectionCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    now: NowDep,
) -> ChangePublic:
    """Correct a record's fields with a reason: a new version; certificates revoked."""
    change = corrections.correct_record(
        session,
        actor=principal,
        municipality_code=code,
        record_id=record_id,
        version=correction.version,
        changes=correction.changes,
        reason=correction.reason,
        now=now,
    )
    return _change(change)


@router.post("/municipalities/{code}/dose-records/{record_id}/verify", response_model=ChangePublic)
def verify_record(
    code: str,
    record_id: str,
    verify: VerifyCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    now: NowDep,
) -> ChangePublic:
    """Verify (lock) a record: uploads can no longer change it, only corrections."""
    change = corrections.verify_record(
        session,
        actor=principal,
        municipality_code=code,
        record_id=record_id,
        version=verify.version,
        now=now,
    )
    return _change(change)


@router.post("/municipalities/{code}/dose-records/{record_id}/void", response_model=ChangePublic)
def void_record(
    code: str,
    record_id: str,
    void: VoidCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    now: NowDep,
) -> ChangePublic:
    """Void a record with a reason; certificates made from it are revoked."""
    change = corrections.void_record(
        session,
        actor=principal,
        municipality_code=code,
        record_id=record_id,
        version=void.version,
        reason=void.reason,
        now=now,
    )
    return _change(change)


@router.get("/municipalities/{code}/dose-records/{record_id}/history", response_model=HistoryPublic)
def record_history(
    code: str, record_id: str, session: SessionDep, principal: CurrentPrincipal, now: NowDep
) -> HistoryPublic:
    """A record and every event of its history, oldest first."""
    view, events = review.record_history(
        session, actor=principal, municipality_code=code, record_id=record_id, now=now
    )
    return HistoryPublic(
        record=DoseRecordPublic.model_validate(view.as_dict()),
        events=[EventPublic.model_validate(e, from_attributes=True) for e in events],
    )
