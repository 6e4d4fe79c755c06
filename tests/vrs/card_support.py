"""Residents with My Number cards, and signing in with them through the API."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import NOW, World
from vrs.db.models import Resident
from vrs.devcard import DevCard, dev_issuer, make_card
from vrs.domain.mynumber import my_number_hmac
from vrs.settings import DEV_MY_NUMBER_KEY

#: Valid My Numbers (check digit per DOMAIN.md).
TARO = "123456789018"
HANAKO = "987654321018"


def add_card_holder(
    world: World,
    local_id: str,
    my_number: str,
    *,
    municipality: str = "131016",
    birth_date: date = date(1980, 4, 15),
    coupon_number: str | None = None,
    protected: bool = False,
    family: tuple[str, str] = ("山田", "ヤマダ"),
    given: tuple[str, str] = ("太郎", "タロウ"),
) -> None:
    with world.session() as s:
        s.add(
            Resident(
                municipality_code=municipality,
                local_id=local_id,
                family_name=family[0],
                given_name=given[0],
                family_name_kana=family[1],
                given_name_kana=given[1],
                birth_date=birth_date,
                sex="M",
                my_number_hmac=my_number_hmac(DEV_MY_NUMBER_KEY.encode(), my_number),
                coupon_number=coupon_number,
                protected=protected,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        s.commit()


def card_for(
    data_dir: Path, my_number: str = TARO, birth_date: date = date(1980, 4, 15)
) -> DevCard:
    issuer = dev_issuer(data_dir, production=False, now=NOW)
    return make_card(issuer, my_number=my_number, name="山田 太郎", birth_date=birth_date, now=NOW)


def sign_in(client: TestClient, card: DevCard) -> dict[str, str]:
    """Sign in with the card; return the resident's Authorization header."""
    challenge = client.post("/v1/auth/challenge")
    assert challenge.status_code == 200, challenge.text
    answer = client.post("/v1/auth/card", json=card.answer(challenge.json()["challenge"]))
    assert answer.status_code == 200, answer.text
    return {"Authorization": "Bearer " + answer.json()["token"]}
