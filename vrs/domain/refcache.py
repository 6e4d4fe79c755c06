"""A per-process snapshot of the small rule tables: products, interval rules, age ranges.

Every ingest needs them and they change rarely (a policy change adds a row), so each
worker reads them at most once per :data:`TTL_SECONDS` per engine. Lots are read with each
series. Sites, devices and municipalities are read fresh by the SQLAlchemy path and kept for
the app's ``cache_ttl`` (10 s by default) by the PostgreSQL fast path's ``PlaceCache``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, select
from sqlmodel import Session

from vrs.db.models import ProductAgeRange, ProductIntervalRule, VaccineProduct

#: A rule row added by an operator takes effect in every worker within this time.
TTL_SECONDS = 30.0


@dataclass(frozen=True)
class IntervalRule:
    """One row of ``product_interval_rule``; see that table for the meaning of each field."""

    id: int
    product_code: str | None
    dose_from: int
    dose_to: int | None
    min_days: int | None
    min_months: int | None
    age_min_months: int | None
    age_max_months: int | None
    effective_from: date
    effective_until: date | None
    note: str

    @property
    def has_age_bounds(self) -> bool:
        return self.age_min_months is not None or self.age_max_months is not None


@dataclass(frozen=True)
class AgeRange:
    """One row of ``product_age_range``: ages in whole months a product is approved for."""

    product_code: str
    min_age_months: int
    max_age_months: int | None
    effective_from: date
    effective_until: date | None


@dataclass(frozen=True)
class ReferenceData:
    products: frozenset[str]
    interval_rules: tuple[IntervalRule, ...]
    age_ranges: tuple[AgeRange, ...]


_cache: WeakKeyDictionary[Engine, tuple[float, ReferenceData]] = WeakKeyDictionary()
_lock = threading.Lock()


def reference_data(session: Session) -> ReferenceData:
    """The rule tables as seen by ``session``'s engine, at most :data:`TTL_SECONDS` old."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    entry = _cache.get(engine)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    data = load_reference_data(session)
    with _lock:
        _cache[engine] = (time.monotonic() + TTL_SECONDS, data)
    return data


def cached_reference_data(engine: Engine) -> ReferenceData | None:
    """The snapshot held for ``engine`` if it is still fresh; None when it must be read."""
    entry = _cache.get(engine)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    return None


def clear_reference_cache() -> None:
    """Forget every snapshot (after changing rule rows in-process, e.g. in tests)."""
    with _lock:
        _cache.clear()


def load_reference_data(session: Session) -> ReferenceData:
    """Read the rule tables now, bypassing the cache."""
    products = frozenset(session.execute(select(VaccineProduct.code)).scalars())  # type: ignore[call-overload]
    rules = tuple(
        IntervalRule(
            id=r.id or 0,
            product_code=r.product_code,
            dose_from=r.dose_from,
            dose_to=r.dose_to,
            min_days=r.min_days,
            min_months=r.min_months,
            age_min_months=r.age_min_months,
            age_max_months=r.age_max_months,
            effective_from=r.effective_from,
            effective_until=r.effective_until,
            note=r.note,
        )
        for r in session.execute(select(ProductIntervalRule)).scalars()
    )
    ranges = tuple(
        AgeRange(
            product_code=a.product_code,
            min_age_months=a.min_age_months,
            max_age_months=a.max_age_months,
            effective_from=a.effective_from,
            effective_until=a.effective_until,
        )
        for a in session.execute(select(ProductAgeRange)).scalars()
    )
    return ReferenceData(products=products, interval_rules=rules, age_ranges=ranges)
