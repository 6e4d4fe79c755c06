"""The masked coupon preview: enough to confirm the holder, nothing more."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import World
from tests.vrs.dose_support import add_resident, body, coupon_number, line
from vrs.db.models import AuditLog
from vrs.domain.preview import first_kana


def preview(client: TestClient, world: World, coupon: str, who: str = "site") -> dict[str, object]:
    answer = client.get(f"/v1/coupons/{coupon}/preview", headers=world.headers(who))
    return {"status": answer.status_code, **answer.json()}


def test_the_preview_shows_initials_birth_month_and_recorded_doses(
    client: TestClient, world: World
) -> None:
    add_resident(world, 1, birth_date=date(1980, 4, 15), family_kana="ヤマダ", given_kana="タロウ")
    for dose, day in ((1, "2021-06-01"), (2, "2021-06-22")):
        payload = body(dose=dose, vaccinated_on=day, doctor_name="佐藤医師")
        assert (
            client.post("/v1/dose-records", json=payload, headers=world.headers("site")).status_code
            == 201
        )
    shown = preview(client, world, line(1, dose=3))
    assert shown == {
        "status": 200,
        "municipality_code": "131016",
        "coupon_dose_number": 3,
        "kana_initials": "ヤ・タ",
        "birth_year_month": "1980-04",
        "recorded_doses": [
            {"dose_number": 1, "vaccinated_on": "2021-06-01"},
            {"dose_number": 2, "vaccinated_on": "2021-06-22"},
        ],
    }


def test_an_unknown_coupon_and_a_protected_resident_look_the_same(
    client: TestClient, world: World
) -> None:
    add_resident(world, 2, protected=True)
    unknown = preview(client, world, line(3))
    protected = preview(client, world, line(2))
    assert unknown["status"] == protected["status"] == 404
    assert unknown == protected
    assert protected["code"] == "PREVIEW_UNAVAILABLE"
    assert "ヤ" not in str(protected)


def test_every_preview_is_audited_even_when_refused(client: TestClient, world: World) -> None:
    add_resident(world, 1)
    add_resident(world, 2, protected=True)
    for serial in (1, 2, 3):
        preview(client, world, line(serial))
    with world.session() as s:
        rows = s.execute(
            select(AuditLog.subject, AuditLog.count).where(AuditLog.action == "coupon.preview")
        ).all()
    assert sorted(rows) == [(coupon_number(1), 1), (coupon_number(2), 0), (coupon_number(3), 0)]


@pytest.mark.parametrize("who", ["admin", "municipality"])
def test_only_site_tablets_read_previews(who: str, client: TestClient, world: World) -> None:
    add_resident(world, 1)
    shown = preview(client, world, line(1), who=who)
    assert (shown["status"], shown["code"]) == (403, "ROLE_NOT_ALLOWED")


@pytest.mark.parametrize(
    ("coupon", "code"),
    [
        ("12345", "MALFORMED_COUPON"),
        (line(1, ticket=2), "TICKET_NOT_VACCINATION"),
        (line(1)[:-1] + str((int(line(1)[-1]) + 1) % 10), "BAD_COUPON_CHECK_DIGIT"),
        (line(1, municipality="131017"), "BAD_MUNICIPALITY_CHECK_DIGIT"),
        (line(1, municipality="271004"), "UNKNOWN_MUNICIPALITY"),
    ],
)
def test_a_misread_coupon_is_refused_before_any_lookup(
    coupon: str, code: str, client: TestClient, world: World
) -> None:
    add_resident(world, 1)
    shown = preview(client, world, coupon)
    assert (shown["status"], shown["code"]) == (422, code)


@pytest.mark.parametrize(
    ("name", "initial"),
    [("ヤマダ", "ヤ"), ("カ\u3099クト", "カ\u3099"), (" オオタ", "オ"), ("", "")],
)
def test_the_initial_keeps_its_voicing_mark(name: str, initial: str) -> None:
    assert first_kana(name) == initial
