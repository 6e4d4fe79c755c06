"""Fixtures of the certificate-service tests: a resident with recorded doses and a card."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import World
from tests.vrs.card_support import TARO, add_card_holder, card_for, sign_in
from tests.vrs.dose_support import add_lots, body, coupon_number
from vrs.settings import Settings

TARO_COUPON = 1
HANAKO_COUPON = 2


def post_dose(client: TestClient, world: World, serial: int, dose: int, day: str, **kw: Any) -> str:
    answer = client.post(
        "/v1/dose-records",
        json=body(serial, dose, vaccinated_on=day, **kw),
        headers=world.headers("site"),
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


@pytest.fixture
def taro(client: TestClient, world: World, settings: Settings) -> dict[str, str]:
    """Taro: two Comirnaty doses recorded in 千代田区, signed in with his card."""
    add_lots(world)
    add_card_holder(world, "R1", TARO, coupon_number=coupon_number(TARO_COUPON))
    post_dose(client, world, TARO_COUPON, 1, "2023-04-01")
    post_dose(client, world, TARO_COUPON, 2, "2023-04-22")
    return sign_in(client, card_for(settings.data_dir, TARO))
