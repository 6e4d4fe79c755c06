"""GET /v1/me: the signed-in resident's names, suggestion, doses and certificates."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import World
from tests.vrs.card_support import TARO, add_card_holder, card_for, sign_in
from tests.vrs.dose_support import add_lots, body, coupon_number
from vrs.db.models import AuditLog
from vrs.settings import Settings


def post_dose(client: TestClient, world: World, dose: int, day: str, **kw: Any) -> None:
    record = body(1, dose, vaccinated_on=day, **kw)
    answer = client.post("/v1/dose-records", json=record, headers=world.headers("site"))
    assert answer.status_code == 201, answer.text


def test_a_resident_sees_own_doses_suggestion_and_certificates(
    client: TestClient, world: World, settings: Settings
) -> None:
    add_lots(world)
    add_card_holder(world, "R1", TARO, coupon_number=coupon_number(1), family=("服部", "ハットリ"))
    post_dose(client, world, 1, "2023-04-01")
    post_dose(client, world, 2, "2023-04-22")
    me = sign_in(client, card_for(settings.data_dir, TARO))
    issued = client.post("/v1/certificates", json={"kind": "domestic"}, headers=me)
    assert issued.status_code == 201, issued.text

    answer = client.get("/v1/me", headers=me)

    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["family_name"], doc["family_name_kana"]) == ("服部", "ハットリ")
    assert (doc["suggested_family"], doc["suggested_given"]) == ("HATTORI", "TARO")
    assert [d["dose_number"] for d in doc["doses"]] == [1, 2]
    assert doc["doses"][0]["product_name"] == "Comirnaty" and doc["doses"][0]["open_flags"] == 0
    assert [c["uvci"] for c in doc["certificates"]] == [issued.json()["uvci"]]
    assert doc["certificates"][0]["status"] == "active"
    assert "my_number" not in answer.text and TARO not in answer.text
    with world.session() as s:
        reads = s.execute(select(AuditLog).where(AuditLog.action == "resident.self_read")).scalars()
        assert [(r.municipality_code, r.subject) for r in reads] == [("131016", "R1")]


def test_a_flagged_dose_shows_as_being_checked(
    client: TestClient, world: World, settings: Settings
) -> None:
    add_lots(world)
    add_card_holder(world, "R1", TARO, coupon_number=coupon_number(1))
    post_dose(client, world, 1, "2023-04-01")
    post_dose(client, world, 2, "2023-04-08")  # 7 days: too short for Comirnaty
    me = sign_in(client, card_for(settings.data_dir, TARO))
    doses = client.get("/v1/me", headers=me).json()["doses"]
    assert [d["open_flags"] > 0 for d in doses] == [False, True]


def test_only_a_resident_session_reads_me(client: TestClient, world: World) -> None:
    for who in ("site", "municipality", "admin"):
        answer = client.get("/v1/me", headers=world.headers(who))
        assert answer.status_code == 403, (who, answer.text)
    assert client.get("/v1/me").status_code == 401
