"""Builders shared by the dose-record tests: coupon lines, request bodies, lots, residents."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlmodel import Session

from tests.conftest import NOW, World
from vrs.db.models import Resident, VaccineLot
from vrs.domain.checkdigits import make_damm_coupon_number
from vrs.domain.reference import COMIRNATY, SPIKEVAX

GOOD_LOT = "FA1234"
MODERNA_LOT = "MD5678"
EXPIRED_LOT = "EX0001"


def coupon_number(serial: int) -> str:
    return make_damm_coupon_number(serial)


def line(serial: int, dose: int = 1, municipality: str = "131016", ticket: int = 1) -> str:
    return f"{ticket}{dose}{municipality}{coupon_number(serial)}"


def body(
    serial: int = 1,
    dose: int = 1,
    *,
    vaccinated_on: str = "2023-05-01",
    product: str = COMIRNATY,
    lot: str = GOOD_LOT,
    site: str = "1310000017",
    source: str = "qr",
    client_record_id: str | None = None,
    municipality: str = "131016",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "client_record_id": client_record_id or str(uuid.uuid4()),
        "coupon": line(serial, dose, municipality),
        "vaccinated_on": vaccinated_on,
        "product": product,
        "lot": lot,
        "site_code": site,
        "source": source,
        **extra,
    }


def add_lots(world: World) -> None:
    with world.session() as s:
        s.add(VaccineLot(lot_number=GOOD_LOT, product_code=COMIRNATY, expires_on=date(2030, 1, 1)))
        s.add(
            VaccineLot(lot_number=MODERNA_LOT, product_code=SPIKEVAX, expires_on=date(2030, 1, 1))
        )
        s.add(
            VaccineLot(lot_number=EXPIRED_LOT, product_code=COMIRNATY, expires_on=date(2022, 1, 31))
        )
        s.commit()


def add_resident(
    world: World,
    serial: int,
    *,
    birth_date: date = date(1980, 4, 15),
    protected: bool = False,
    municipality: str = "131016",
    family_kana: str = "ヤマダ",
    given_kana: str = "タロウ",
) -> str:
    local_id = f"R{serial:09d}"
    with world.session() as s:
        s.add(
            Resident(
                municipality_code=municipality,
                local_id=local_id,
                family_name="山田",
                given_name="太郎",
                family_name_kana=family_kana,
                given_name_kana=given_kana,
                birth_date=birth_date,
                sex="M",
                coupon_number=coupon_number(serial),
                protected=protected,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        s.commit()
    return local_id


def open_flag_codes(record: dict[str, Any]) -> set[str]:
    return {f["rule_code"] for f in record["flags"]}


def session_for(world: World) -> Session:
    return world.session()
