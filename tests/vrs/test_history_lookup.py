"""History look-up for residents who moved: keyed-hash matching, protection, audit, rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.conftest import Clock, World
from tests.vrs.dose_support import add_lots, add_resident, body, open_flag_codes
from vrs.app import create_app
from vrs.db.models import AuditLog, Resident, ResidentLink
from vrs.domain.checkdigits import my_number_check_digit
from vrs.domain.mynumber import my_number_hmac
from vrs.settings import Settings

HERE, THERE = "131016", "131041"
NUMBER = "123456789018"
STRANGER = "98765432101" + str(my_number_check_digit("98765432101"))


@pytest.fixture(autouse=True)
def _lots(world: World) -> None:
    add_lots(world)


def give_number(world: World, settings: Settings, municipality: str, local_id: str) -> None:
    with world.session() as s:
        s.execute(
            update(Resident)
            .where(
                Resident.municipality_code == municipality,  # type: ignore[arg-type]
                Resident.local_id == local_id,  # type: ignore[arg-type]
            )
            .values(my_number_hmac=my_number_hmac(settings.my_number_hmac_key, NUMBER))
        )
        s.commit()


@pytest.fixture
def moved(client: TestClient, world: World, settings: Settings) -> str:
    """A resident of 新宿区 with doses 1 and 2 there, now also a resident of 千代田区."""
    there = add_resident(world, 50, municipality=THERE)
    here = add_resident(world, 60, municipality=HERE)
    give_number(world, settings, THERE, there)
    give_number(world, settings, HERE, here)
    for dose, day in ((1, "2021-07-01"), (2, "2021-07-22")):
        posted = client.post(
            "/v1/dose-records",
            json=body(50, dose, vaccinated_on=day, municipality=THERE),
            headers=world.headers("site"),
        )
        assert posted.status_code == 201
    return here


def look(
    client: TestClient, world: World, who: str = "municipality", code: str = HERE, **payload: Any
) -> httpx.Response:
    payload.setdefault("purpose", "resident moved in: vaccination history for booster planning")
    return client.post(
        f"/v1/municipalities/{code}/history-lookup", json=payload, headers=world.headers(who)
    )


def test_my_numbers_find_the_doses_recorded_elsewhere_and_nothing_more(
    client: TestClient, world: World, moved: str
) -> None:
    answer = look(client, world, my_numbers=[NUMBER, STRANGER, "123456789012", "x"])

    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [
        "found", "not_found", "invalid_my_number", "invalid_my_number",
    ]  # fmt: skip
    assert results[0]["doses"] == [
        {"municipality_code": THERE, "dose_number": 1, "vaccinated_on": "2021-07-01",
         "product": "EU/1/20/1528", "lot": "FA1234"},
        {"municipality_code": THERE, "dose_number": 2, "vaccinated_on": "2021-07-22",
         "product": "EU/1/20/1528", "lot": "FA1234"},
    ]  # fmt: skip
    assert NUMBER not in answer.text
    assert (answer.json()["found"], answer.json()["doses"], answer.json()["linked"]) == (1, 2, 1)


def test_every_look_up_is_audited_with_who_how_many_and_why(
    client: TestClient, world: World, moved: str
) -> None:
    look(client, world, my_numbers=[NUMBER, STRANGER]).raise_for_status()

    with world.session() as s:
        [entry] = s.execute(
            select(AuditLog).where(AuditLog.action == "history.lookup")  # type: ignore[arg-type]
        ).scalars()
    assert entry.count == 2
    assert entry.purpose == "resident moved in: vaccination history for booster planning"
    assert entry.actor_role == "municipality" and entry.actor_credential_id is not None
    assert entry.details is not None and entry.details["found"] == 1
    assert NUMBER not in repr(entry.details) and STRANGER not in repr(entry.details)


def test_a_purpose_is_required_and_the_request_is_checked(client: TestClient, world: World) -> None:
    no_purpose = look(client, world, my_numbers=[NUMBER], purpose="  ")
    both = look(client, world, my_numbers=[NUMBER], local_ids=["A"])
    neither = look(client, world)

    assert (no_purpose.status_code, no_purpose.json()["code"]) == (422, "MISSING_PURPOSE")
    assert (both.status_code, both.json()["code"]) == (422, "BAD_LOOKUP")
    assert (neither.status_code, neither.json()["code"]) == (422, "BAD_LOOKUP")
    assert NUMBER not in no_purpose.text


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("other_municipality", "OTHER_TENANT"),
        ("admin", "ROLE_NOT_ALLOWED"),
        ("site", "ROLE_NOT_ALLOWED"),
    ],
)
def test_only_the_municipality_itself_looks_up(
    client: TestClient, world: World, moved: str, who: str, code: str
) -> None:
    answer = look(client, world, who=who, my_numbers=[NUMBER])
    assert (answer.status_code, answer.json()["code"]) == (403, code)
    assert NUMBER not in answer.text


def test_a_municipality_does_not_find_its_own_records_this_way(
    client: TestClient, world: World, moved: str
) -> None:
    """新宿区 asking for the number finds 千代田区's records only (none)."""
    answer = look(client, world, who="other_municipality", code=THERE, my_numbers=[NUMBER])
    assert answer.json()["results"][0]["status"] == "found"
    assert answer.json()["results"][0]["doses"] == []


def test_a_protected_resident_elsewhere_is_withheld(
    client: TestClient, world: World, settings: Settings, moved: str
) -> None:
    with world.session() as s:
        s.execute(
            update(Resident).where(Resident.municipality_code == THERE).values(protected=True)  # type: ignore[arg-type]
        )
        s.commit()

    answer = look(client, world, local_ids=[moved])

    [result] = answer.json()["results"]
    assert (result["status"], result["doses"]) == ("withheld", [])
    assert THERE not in answer.text
    assert answer.json()["withheld"] == 1 and answer.json()["linked"] == 0


def test_local_ids_are_looked_up_by_their_stored_hash(
    client: TestClient, world: World, moved: str
) -> None:
    add_resident(world, 61, municipality=HERE)  # no My Number on file

    answer = look(client, world, local_ids=[moved, "R000000061", "NOBODY"])

    results = answer.json()["results"]
    assert [(r["local_id"], r["status"]) for r in results] == [
        (moved, "found"), ("R000000061", "no_my_number"), ("NOBODY", "unknown_resident"),
    ]  # fmt: skip
    assert len(results[0]["doses"]) == 2


@pytest.fixture(params=["portable", "fast"])
def ingest_client(
    request: pytest.FixtureRequest, backend: str, settings: Settings, world: World, clock: Clock
) -> Iterator[TestClient]:
    fast = request.param == "fast"
    if fast and backend != "postgresql":
        pytest.skip("the fast ingest path runs on PostgreSQL only")
    app = create_app(settings, engine=world.engine, clock=clock, cache_ttl=0, ingest_fast_path=fast)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_doses_found_elsewhere_count_for_the_rules_here(
    ingest_client: TestClient, world: World, settings: Settings, moved: str
) -> None:
    client = ingest_client
    # Dose 3 here, before the look-up: doses 1 and 2 are unknown here.
    dose_3 = body(60, 3, vaccinated_on="2022-04-01")
    third = client.post("/v1/dose-records", json=dose_3, headers=world.headers("site")).json()
    assert open_flag_codes(third) == {"DOSE_NUMBER_GAP"}

    look(client, world, local_ids=[moved]).raise_for_status()

    listed = client.get(
        "/v1/dose-records", params={"coupon": third["coupon_number"], "municipality": HERE},
        headers=world.headers("municipality"),
    ).json()["records"]  # fmt: skip
    assert open_flag_codes(listed[0]) == set()  # doses 1 and 2 were found in 新宿区
    with world.session() as s:
        links = s.execute(select(ResidentLink)).scalars().all()
    assert [(x.resident_local_id, x.source_municipality_code) for x in links] == [(moved, THERE)]
    # Dose 3 is 8 months and 10 days after the linked dose 2: no interval flag. Correcting its
    # date to 2022-01-10 (5.5 months after dose 2) is checked against the linked dose too.
    corrected = client.post(
        f"/v1/municipalities/{HERE}/dose-records/{third['id']}/corrections",
        json={"version": 1, "reason": "form", "changes": {"vaccinated_on": "2022-01-10"}},
        headers=world.headers("municipality"),
    ).json()["record"]
    assert open_flag_codes(corrected) == {"INTERVAL_TOO_SHORT"}
