"""The masked coupon preview a site shows staff before recording a dose.

It carries just enough to confirm that the coupon belongs to the person in front of the
staff member: the first kana of the family and given names and the birth year-month,
plus the doses already recorded for the coupon. An unknown coupon and a protected
resident's coupon get the same answer, so protection cannot be detected from outside.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import Session

from vrs.domain import audit
from vrs.domain.auth import Principal, Role, require_role
from vrs.domain.coupons import check_coupon_number, parse_coupon_line
from vrs.domain.doses import DEVICE, MUNICIPALITY
from vrs.domain.errors import NotFound
from vrs.domain.rules import DOSE, RESIDENT, check_device, check_municipality


@dataclass(frozen=True)
class RecordedDose:
    dose_number: int
    vaccinated_on: date


@dataclass(frozen=True)
class CouponPreview:
    municipality_code: str
    #: The dose number printed on the scanned ticket.
    coupon_dose_number: int
    #: First kana of the family and given names, e.g. ``ヤ・タ``.
    kana_initials: str
    #: ``YYYY-MM``.
    birth_year_month: str
    recorded_doses: tuple[RecordedDose, ...]


def first_kana(name: str) -> str:
    """The first character of a kana name with any combining (han)dakuten that follow it."""
    name = name.strip()
    if not name:
        return ""
    end = 1
    while end < len(name) and unicodedata.combining(name[end]):
        end += 1
    return name[:end]


def coupon_preview(
    session: Session, principal: Principal, line18: str, now: datetime
) -> CouponPreview:
    """The masked preview of a coupon for a site tablet; audit-logged, commits.

    Raises the coupon line's reject codes, ``UNKNOWN_MUNICIPALITY``, ``DEVICE_NOT_ENROLLED``,
    and ``PREVIEW_UNAVAILABLE`` (404) both for an unknown coupon and a protected resident.
    """
    require_role(principal, Role.SITE)
    line = parse_coupon_line(line18)
    device_site = session.execute(
        select(DEVICE.c.site_code).where(
            DEVICE.c.id == principal.device_id, DEVICE.c.active.is_(True)
        )
    ).scalar_one_or_none()
    check_device(device_site)
    coupon_format = session.execute(
        select(MUNICIPALITY.c.coupon_format).where(MUNICIPALITY.c.code == line.municipality_code)
    ).scalar_one_or_none()
    check_coupon_number(
        line.coupon_number, check_municipality(line.municipality_code, coupon_format)
    )
    resident = session.execute(
        select(
            RESIDENT.c.family_name_kana,
            RESIDENT.c.given_name_kana,
            RESIDENT.c.birth_date,
            RESIDENT.c.protected,
        ).where(
            RESIDENT.c.municipality_code == line.municipality_code,
            RESIDENT.c.coupon_number == line.coupon_number,
        )
    ).one_or_none()
    doses = session.execute(
        select(DOSE.c.dose_number, DOSE.c.vaccinated_on)
        .where(
            DOSE.c.municipality_code == line.municipality_code,
            DOSE.c.coupon_number == line.coupon_number,
            DOSE.c.status != "voided",
        )
        .order_by(DOSE.c.dose_number)
    ).all()
    shown = resident is not None and not resident.protected
    audit.record(
        session,
        principal,
        "coupon.preview",
        now=now,
        municipality_code=line.municipality_code,
        subject=line.coupon_number,
        count=1 if shown else 0,
        details={
            "shown": shown,
            "protected": bool(resident is not None and resident.protected),
            "site_code": device_site,
        },
    )
    session.commit()
    if resident is None or not shown:
        raise NotFound("PREVIEW_UNAVAILABLE", "no preview is available for this coupon")
    return CouponPreview(
        municipality_code=line.municipality_code,
        coupon_dose_number=line.dose_number,
        kana_initials=f"{first_kana(resident.family_name_kana)}・"
        f"{first_kana(resident.given_name_kana)}",
        birth_year_month=f"{resident.birth_date:%Y-%m}",
        recorded_doses=tuple(RecordedDose(n, d) for n, d in doses),
    )
