"""Reference data: the vaccines used in Japan, their EU DCC codes, and their rules as data.

The rules are rows with effective dates (DOMAIN.md): changing policy means adding a row,
not changing code. :func:`seed_reference_data` writes them idempotently; ``vrs db upgrade``
calls it after migrating.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete
from sqlmodel import Session

from vrs.db.models import ProductAgeRange, ProductIntervalRule, VaccineProduct

COMIRNATY = "EU/1/20/1528"
SPIKEVAX = "EU/1/20/1507"
VAXZEVRIA = "EU/1/21/1529"
NUVAXOVID = "EU/1/21/1618"
JCOVDEN = "EU/1/20/1525"

#: First dose given in Japan; no earlier date is a valid vaccination date.
PROGRAMME_START = date(2021, 2, 17)

PRODUCTS = (
    VaccineProduct(
        code=COMIRNATY,
        name="Comirnaty",
        manufacturer_code="ORG-100030215",
        prophylaxis_code="1119349007",
        series_length=2,
    ),
    VaccineProduct(
        code=SPIKEVAX,
        name="Spikevax",
        manufacturer_code="ORG-100031184",
        prophylaxis_code="1119349007",
        series_length=2,
    ),
    VaccineProduct(
        code=VAXZEVRIA,
        name="Vaxzevria",
        manufacturer_code="ORG-100001699",
        prophylaxis_code="29061000087103",
        series_length=2,
    ),
    VaccineProduct(
        code=NUVAXOVID,
        name="Nuvaxovid",
        manufacturer_code="ORG-100032020",
        prophylaxis_code="1162643001",
        series_length=2,
    ),
    VaccineProduct(
        code=JCOVDEN,
        name="Jcovden",
        manufacturer_code="ORG-100001417",
        prophylaxis_code="29061000087103",
        series_length=1,
    ),
)

_START = PROGRAMME_START


def _interval_rules() -> list[ProductIntervalRule]:
    r = ProductIntervalRule
    return [
        # Primary series, dose 1 -> 2 (calendar days between the two dates).
        r(
            product_code=COMIRNATY,
            dose_from=2,
            dose_to=2,
            min_days=19,
            effective_from=_START,
            note="Comirnaty 1->2: standard 21 days, earliest 19",
        ),
        r(
            product_code=SPIKEVAX,
            dose_from=2,
            dose_to=2,
            min_days=28,
            effective_from=_START,
            note="Spikevax 1->2: standard 28 days; no earlier day published",
        ),
        r(
            product_code=VAXZEVRIA,
            dose_from=2,
            dose_to=2,
            min_days=28,
            effective_from=_START,
            note="Vaxzevria 1->2: 28-84 days (56+ recommended)",
        ),
        r(
            product_code=NUVAXOVID,
            dose_from=2,
            dose_to=2,
            min_days=21,
            effective_from=_START,
            note="Nuvaxovid 1->2: 21 days",
        ),
        # Pediatric Comirnaty (6 months to 4 years): a three-dose primary series.
        r(
            product_code=COMIRNATY,
            dose_from=2,
            dose_to=2,
            min_days=21,
            age_min_months=6,
            age_max_months=59,
            effective_from=_START,
            note="Comirnaty 6 months-4 years 1->2: 21 days",
        ),
        r(
            product_code=COMIRNATY,
            dose_from=3,
            dose_to=3,
            min_days=56,
            age_min_months=6,
            age_max_months=59,
            effective_from=_START,
            note="Comirnaty 6 months-4 years 2->3: 56 days (primary series)",
        ),
        # Boosters (dose 3 on), any product, by the booster's date.
        r(
            dose_from=3,
            min_months=8,
            effective_from=_START,
            effective_until=date(2021, 12, 31),
            note="booster: 8 months after the previous dose (from 2021-12)",
        ),
        r(
            dose_from=3,
            min_months=6,
            effective_from=date(2022, 1, 1),
            effective_until=date(2022, 8, 31),
            note="booster: 6-7 months early 2022 (the shorter bound is the flag threshold)",
        ),
        r(
            dose_from=3,
            min_months=5,
            effective_from=date(2022, 9, 1),
            effective_until=date(2022, 10, 20),
            note="booster: 5 months from 2022-09",
        ),
        r(
            dose_from=3,
            min_months=3,
            effective_from=date(2022, 10, 21),
            note="booster: 3 months from 2022-10-21",
        ),
    ]


def _age_ranges() -> list[ProductAgeRange]:
    a = ProductAgeRange
    return [
        a(
            product_code=COMIRNATY,
            min_age_months=6,
            effective_from=_START,
            note="Comirnaty formulations: 12+, 5-11 years, 6 months-4 years",
        ),
        a(
            product_code=SPIKEVAX,
            min_age_months=6,
            effective_from=_START,
            note="Spikevax: 12+ at first, later from 6 months",
        ),
        a(
            product_code=VAXZEVRIA,
            min_age_months=18 * 12,
            effective_from=_START,
            note="Vaxzevria: 18 years and over",
        ),
        a(
            product_code=NUVAXOVID,
            min_age_months=12 * 12,
            effective_from=_START,
            note="Nuvaxovid: 12 years and over",
        ),
        a(
            product_code=JCOVDEN,
            min_age_months=18 * 12,
            effective_from=_START,
            note="Jcovden: 18 years and over",
        ),
    ]


def seed_reference_data(session: Session) -> None:
    """Write the products and replace the rule tables with the rows above."""
    for product in PRODUCTS:
        session.merge(product.model_copy())
    session.flush()
    session.execute(delete(ProductIntervalRule))
    session.execute(delete(ProductAgeRange))
    session.add_all(_interval_rules())
    session.add_all(_age_ranges())
