"""Open statistics: counts kept by the database on every write, small cells suppressed."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Clock, World
from tests.vrs.dose_support import GOOD_LOT, MODERNA_LOT, add_lots, add_resident, body, line
from vrs.db import stats as summary
from vrs.domain.reference import COMIRNATY, SPIKEVAX

M = "131016"
SITE = "1310000017"
HEADER = "coupon,vaccinated_on,product,lot,site_code,doctor_name\n"


@pytest.fixture(autouse=True)
def _lots(world: World) -> None:
    add_lots(world)


def import_doses(client: TestClient, world: World, rows: list[str]) -> None:
    answer = client.post(
        f"/v1/municipalities/{M}/dose-records/import",
        content=(HEADER + "".join(rows)).encode(),
        headers={**world.headers("municipality"), "Content-Type": "text/csv"},
    )
    assert answer.status_code == 200, answer.text


def form(serial: int, day: str = "2023-05-01", product: str = COMIRNATY, dose: int = 1) -> str:
    lot = GOOD_LOT if product == COMIRNATY else MODERNA_LOT
    return f"{line(serial, dose)},{day},{product},{lot},{SITE},\n"


def get(client: TestClient, **params: Any) -> httpx.Response:
    return client.get("/v1/stats/doses", params=params)


def cells(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    answer = get(client, **params)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["cells"]
    return found


def test_counts_by_product_with_small_cells_suppressed_and_no_credential(
    client: TestClient, world: World
) -> None:
    import_doses(client, world, [form(n) for n in range(1, 13)])
    import_doses(client, world, [form(n, product=SPIKEVAX) for n in range(20, 23)])

    answer = get(client, group_by="product")

    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=300"
    assert answer.json()["cells"] == [  # by product code: EU/1/20/1507 before EU/1/20/1528
        {"product": SPIKEVAX, "doses": None, "suppressed": True},
        {"product": COMIRNATY, "doses": 12, "suppressed": False},
    ]
    assert answer.json()["suppressed_cells"] == 1
    assert cells(client) == [{"doses": 15, "suppressed": False}]


def test_voids_corrections_and_matches_are_followed(
    client: TestClient, world: World, clock: Clock
) -> None:
    import_doses(client, world, [form(n) for n in range(1, 12)])  # 11 pending doses
    assert cells(client, group_by="age_band") == [
        {"age_band": "unknown", "doses": 11, "suppressed": False}
    ]
    for n in range(1, 12):  # the residents arrive: born 1980, 43 at the dose
        add_resident(world, n, birth_date=date(1980, 1, 1))
    posted = client.post("/v1/dose-records", json=body(1, 2, vaccinated_on="2023-05-30"),
                         headers=world.headers("site")).json()  # fmt: skip
    assert posted["status"] == "recorded"
    by_band = {c["age_band"]: c["doses"] for c in cells(client, group_by="age_band")}
    # Posting dose 2 matched coupon 1's pending dose 1; the other ten wait for a rematch.
    assert by_band == {"40-49": None, "unknown": 10}

    clock.now += timedelta(minutes=1)
    voided = client.post(
        f"/v1/municipalities/{M}/dose-records/{posted['id']}/void",
        json={"version": posted["version"], "reason": "entered on the wrong coupon"},
        headers=world.headers("municipality"),
    )
    assert voided.status_code == 200
    assert cells(client, group_by="dose_number") == [
        {"dose_number": 1, "doses": 11, "suppressed": False}
    ]
    listing = client.get(
        "/v1/dose-records", params={"coupon": line(2)}, headers=world.headers("municipality")
    ).json()["records"]
    moved = client.post(
        f"/v1/municipalities/{M}/dose-records/{listing[0]['id']}/corrections",
        json={"version": 1, "reason": "date", "changes": {"vaccinated_on": "2023-04-01"}},
        headers=world.headers("municipality"),
    )
    assert moved.status_code == 200
    dated = cells(client, group_by="date")
    assert dated == [
        {"date": "2023-04-01", "doses": None, "suppressed": True},
        {"date": "2023-05-01", "doses": 10, "suppressed": False},
    ]
    assert cells(client, group_by="date", **{"from": "2023-04-15"}) == dated[1:]


def test_the_triggers_agree_with_a_rebuild_and_compaction(client: TestClient, world: World) -> None:
    import_doses(client, world, [form(n) for n in range(1, 15)])
    import_doses(client, world, [form(n, "2023-05-25", dose=2) for n in range(1, 15)])
    everything = {"group_by": "date,municipality,product,age_band,dose_number"}
    before = cells(client, **everything)

    with world.engine.begin() as conn:
        rows = summary.compact(conn)
    compacted = cells(client, **everything)
    with world.engine.begin() as conn:
        summary.rebuild(conn)
    rebuilt = cells(client, **everything)

    assert before == compacted == rebuilt
    assert rows == 2
    assert [c["doses"] for c in before] == [14, 14]


def test_csv_is_machine_readable(client: TestClient, world: World) -> None:
    import_doses(client, world, [form(n) for n in range(1, 11)])
    answer = get(client, group_by="municipality,dose_number", format="csv")
    assert answer.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(answer.text))) == [
        ["municipality", "dose_number", "doses", "suppressed"],
        [M, "1", "10", "False"],
    ]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"group_by": "name"}, "BAD_GROUP_BY"),
        ({"group_by": "date,date"}, "BAD_GROUP_BY"),
        ({"from": "2023-02-30"}, "BAD_DATE"),
        ({"from": "2023-05-02", "to": "2023-05-01"}, "BAD_RANGE"),
        ({"format": "xml"}, "BAD_FORMAT"),
    ],
)
def test_bad_queries_are_refused(client: TestClient, params: dict[str, str], code: str) -> None:
    answer = get(client, **params)
    assert (answer.status_code, answer.json()["code"]) == (422, code)
