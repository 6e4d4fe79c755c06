"""Known vaccine lots: the reference the lot rules (unknown, other product, expired) check
records against. Loaded by the national operator from the manufacturers' lot lists."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

from sqlmodel import Session

from vrs.db.models import VaccineLot, VaccineProduct
from vrs.domain import audit
from vrs.domain.auth import Principal, Role, require_role
from vrs.domain.errors import NotFound, Unprocessable

_LOT = re.compile(r"[0-9A-Za-z][0-9A-Za-z\-./]{0,39}")
_GTIN = re.compile(r"[0-9]{14}")


def _check(
    session: Session, lot_number: str, product_code: str, expires_on: str, gtin: str | None
) -> VaccineLot:
    lot_number = lot_number.strip()
    if not _LOT.fullmatch(lot_number):
        raise Unprocessable(
            "BAD_LOT", f"{lot_number!r} is not a lot number (1-40 letters, digits, - . /)"
        )
    if session.get(VaccineProduct, product_code.strip()) is None:
        raise NotFound("UNKNOWN_PRODUCT", f"no vaccine product {product_code!r}")
    try:
        expiry = date.fromisoformat(expires_on.strip())
    except ValueError:
        raise Unprocessable("BAD_DATE", f"expiry {expires_on!r} is not YYYY-MM-DD") from None
    if gtin is not None and gtin.strip() and not _GTIN.fullmatch(gtin.strip()):
        raise Unprocessable("BAD_GTIN", f"{gtin!r} is not a 14-digit GTIN")
    return VaccineLot(
        lot_number=lot_number,
        product_code=product_code.strip(),
        expires_on=expiry,
        gtin=(gtin or "").strip() or None,
    )


def add_lot(
    session: Session,
    *,
    actor: Principal,
    lot_number: str,
    product_code: str,
    expires_on: str,
    now: datetime,
    gtin: str | None = None,
) -> VaccineLot:
    """Register a lot (or change its expiry or GTIN)."""
    require_role(actor, Role.ADMIN)
    lot = session.merge(_check(session, lot_number, product_code, expires_on, gtin))
    audit.record(
        session, actor, "lot.upsert", now=now, subject=f"{lot.product_code}:{lot.lot_number}"
    )
    return lot


def load_lots_csv(session: Session, *, actor: Principal, text: str, now: datetime) -> int:
    """Load ``lot_number,product,expires_on[,gtin]`` rows; every row is checked before any is
    written (``INVALID_FILE`` lists the bad ones)."""
    require_role(actor, Role.ADMIN)
    lots: list[VaccineLot] = []
    errors: list[dict[str, object]] = []
    for line_no, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or (line_no == 1 and fields[0].strip().lower() == "lot_number"):
            continue
        if len(fields) not in (3, 4):
            errors.append(
                {
                    "line": line_no,
                    "code": "BAD_COLUMNS",
                    "message": "expected lot_number,product,expires_on[,gtin]",
                }
            )
            continue
        try:
            gtin = fields[3] if len(fields) == 4 else None
            lots.append(_check(session, fields[0], fields[1], fields[2], gtin))
        except (Unprocessable, NotFound) as exc:
            errors.append({"line": line_no, "code": exc.code, "message": exc.message})
    if errors:
        raise Unprocessable(
            "INVALID_FILE", f"{len(errors)} bad rows; nothing was written", errors=errors
        )
    for lot in lots:
        session.merge(lot)
    audit.record(session, actor, "lot.load", now=now, count=len(lots))
    return len(lots)
