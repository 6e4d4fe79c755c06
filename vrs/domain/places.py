"""Municipalities and vaccination sites: the places records belong to."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from vrs.db.models import Municipality, Site
from vrs.domain import audit
from vrs.domain.auth import Principal, Role, require_role
from vrs.domain.checkdigits import is_valid_municipality_code
from vrs.domain.errors import Unprocessable

COUPON_FORMATS = ("damm", "legacy")


def check_municipality_code(code: str) -> str:
    code = code.strip()
    if not is_valid_municipality_code(code):
        raise Unprocessable(
            "BAD_MUNICIPALITY_CODE",
            f"{code!r} is not a municipality code (6 digits, prefecture 01-47, check digit)",
        )
    return code


def add_municipality(
    session: Session,
    *,
    actor: Principal,
    code: str,
    name: str,
    now: datetime,
    coupon_format: str = "damm",
) -> Municipality:
    """Create or rename a municipality; the code's check digit must be right."""
    require_role(actor, Role.ADMIN)
    code = check_municipality_code(code)
    name = name.strip()
    if not name or len(name) > 100:
        raise Unprocessable("BAD_NAME", "a municipality name is 1-100 characters")
    if coupon_format not in COUPON_FORMATS:
        raise Unprocessable("BAD_COUPON_FORMAT", "coupon format is 'damm' or 'legacy'")
    row = session.get(Municipality, code)
    if row is None:
        row = Municipality(
            code=code, name=name, prefecture=code[:2], coupon_format=coupon_format, created_at=now
        )
        session.add(row)
    else:
        row.name = name
        row.coupon_format = coupon_format
    audit.record(session, actor, "municipality.upsert", now=now, municipality_code=code)
    return row


@dataclass(frozen=True)
class LoadError:
    line: int
    code: str
    message: str


def load_municipalities_csv(
    session: Session, *, actor: Principal, text: str, now: datetime
) -> list[Municipality]:
    """Load ``code,name[,coupon_format]`` rows; all rows are checked before any is written."""
    require_role(actor, Role.ADMIN)
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    for line_no, fields in enumerate(reader, start=1):
        if not fields or (line_no == 1 and fields[0].strip().lower() == "code"):
            continue
        rows.append((line_no, fields))
    errors: list[LoadError] = []
    for line_no, fields in rows:
        if len(fields) < 2 or len(fields) > 3:
            errors.append(LoadError(line_no, "BAD_COLUMNS", "expected code,name[,coupon_format]"))
        elif not is_valid_municipality_code(fields[0].strip()):
            errors.append(LoadError(line_no, "BAD_MUNICIPALITY_CODE", f"{fields[0]!r}"))
        elif not fields[1].strip():
            errors.append(LoadError(line_no, "BAD_NAME", "empty name"))
        elif len(fields) == 3 and fields[2].strip() not in COUPON_FORMATS:
            errors.append(LoadError(line_no, "BAD_COUPON_FORMAT", f"{fields[2]!r}"))
    if errors:
        raise Unprocessable(
            "INVALID_FILE",
            f"{len(errors)} bad rows; nothing was written",
            errors=[e.__dict__ for e in errors],
        )
    return [
        add_municipality(
            session,
            actor=actor,
            code=f[0],
            name=f[1],
            now=now,
            coupon_format=f[2].strip() if len(f) == 3 else "damm",
        )
        for _, f in rows
    ]


def add_site(
    session: Session,
    *,
    actor: Principal,
    code: str,
    name: str,
    now: datetime,
    municipality_code: str | None = None,
) -> Site:
    """Register a vaccination site by its 10-digit medical-institution code."""
    require_role(actor, Role.ADMIN)
    code = code.strip()
    if len(code) != 10 or not code.isascii() or not code.isdigit() or not 1 <= int(code[:2]) <= 47:
        raise Unprocessable(
            "BAD_SITE_CODE", "a medical-institution code is 10 digits starting with a prefecture"
        )
    if not name.strip():
        raise Unprocessable("BAD_NAME", "a site needs a name")
    if municipality_code is not None:
        check_municipality_code(municipality_code)
    row = session.get(Site, code)
    if row is None:
        row = Site(
            code=code, name=name.strip(), municipality_code=municipality_code, created_at=now
        )
        session.add(row)
    else:
        row.name = name.strip()
        row.municipality_code = municipality_code
        row.active = True
    audit.record(session, actor, "site.upsert", now=now, subject=code)
    return row


def iter_municipalities(session: Session) -> Iterable[Municipality]:
    from sqlmodel import select

    return session.exec(select(Municipality).order_by(Municipality.code))
