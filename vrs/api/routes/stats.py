"""Open statistics: public dose counts, machine-readable, small cells suppressed."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from vrs.api.deps import SessionDep
from vrs.api.responses import FastJSONResponse
from vrs.domain import stats

router = APIRouter(tags=["open statistics"])

#: Aggregates change slowly and are public: caches may keep them a few minutes.
CACHE_CONTROL = "public, max-age=300"


@router.get("/stats/doses")
def dose_statistics(
    session: SessionDep,
    group_by: str | None = Query(
        default=None, max_length=200, description="date,municipality,product,age_band,dose_number"
    ),
    date_from: str | None = Query(default=None, alias="from", max_length=10),
    date_to: str | None = Query(default=None, alias="to", max_length=10),
    format: str | None = Query(default=None, max_length=10, description="json (default) or csv"),
) -> Response:
    """Doses per group over a date range; cells of 1-9 doses are suppressed. No credential."""
    query = stats.parse_query(group_by, date_from, date_to, format)
    table = stats.dose_statistics(session, query)
    headers = {"Cache-Control": CACHE_CONTROL}
    if query.format == "csv":
        return Response(table.as_csv(), media_type="text/csv; charset=utf-8", headers=headers)
    return FastJSONResponse(table.as_json(), headers=headers)
