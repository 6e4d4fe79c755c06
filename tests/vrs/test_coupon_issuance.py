"""Coupon issuance: Damm-checked serials, unique in the municipality, never reused, race-free."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlmodel import Session

from tests.conftest import NOW, World
from tests.vrs.dose_support import body
from vrs.db.models import Resident
from vrs.domain.auth import authenticate
from vrs.domain.checkdigits import is_valid_damm, make_damm_coupon_number
from vrs.domain.coupon_issuance import issue_coupons

M = "131016"


def add_residents(world: World, count: int, municipality: str = M, start: int = 0) -> list[str]:
    ids = [f"L{n:06d}" for n in range(start, start + count)]
    with world.session() as s:
        for lid in ids:
            s.add(
                Resident(
                    municipality_code=municipality,
                    local_id=lid,
                    family_name="山田",
                    given_name="花子",
                    family_name_kana="ヤマダ",
                    given_name_kana="ハナコ",
                    birth_date=NOW.date().replace(year=1980),
                    sex="F",
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
        s.commit()
    return ids


def issue(
    client: TestClient, world: World, who: str = "municipality", code: str = M, **payload: Any
) -> httpx.Response:
    return client.post(
        f"/v1/municipalities/{code}/coupons", json=payload, headers=world.headers(who)
    )


def numbers_of(world: World, municipality: str = M) -> dict[str, str | None]:
    with world.session() as s:
        rows = s.execute(
            select(Resident.local_id, Resident.coupon_number).where(  # type: ignore[call-overload]
                Resident.municipality_code == municipality
            )
        )
        return {lid: number for lid, number in rows}


def test_residents_without_a_number_get_damm_checked_serials(
    client: TestClient, world: World
) -> None:
    ids = add_residents(world, 3)

    answer = issue(client, world)

    assert answer.status_code == 200, answer.text
    issued = answer.json()["issued"]
    assert [c["local_id"] for c in issued] == ids
    assert [c["coupon_number"] for c in issued] == [make_damm_coupon_number(n) for n in (1, 2, 3)]
    assert all(is_valid_damm(c["coupon_number"]) for c in issued)
    assert answer.json()["remaining"] == 0
    assert numbers_of(world) == {c["local_id"]: c["coupon_number"] for c in issued}


def test_numbers_are_never_reused_and_numbers_in_use_are_skipped(
    client: TestClient, world: World
) -> None:
    add_residents(world, 1)
    assert issue(client, world).json()["issued"][0]["coupon_number"] == make_damm_coupon_number(1)
    # The holder's number is taken away (moved out); serial 2 is in use as a legacy number
    # and serial 3 on a pending dose record.
    with world.session() as s:
        s.execute(update(Resident).values(coupon_number=None))
        s.commit()
    [legacy] = add_residents(world, 1, start=10)
    with world.session() as s:
        s.execute(
            update(Resident)
            .where(Resident.local_id == legacy)  # type: ignore[arg-type]
            .values(coupon_number=make_damm_coupon_number(2))
        )
        s.commit()
    posted = client.post("/v1/dose-records", json=body(3), headers=world.headers("site"))
    assert posted.json()["status"] == "pending"

    answer = issue(client, world)

    assert [c["coupon_number"] for c in answer.json()["issued"]] == [make_damm_coupon_number(4)]


def test_named_residents_only_and_unknown_ones_refused(client: TestClient, world: World) -> None:
    ids = add_residents(world, 3)
    first = issue(client, world, local_ids=[ids[2]])
    again = issue(client, world, local_ids=[ids[2], ids[0]])
    unknown = issue(client, world, local_ids=["NOBODY", ids[1]])

    assert [c["local_id"] for c in first.json()["issued"]] == [ids[2]]
    assert [c["local_id"] for c in again.json()["issued"]] == [ids[0]]
    assert again.json()["already_issued"] == [ids[2]]
    assert (unknown.status_code, unknown.json()["code"]) == (422, "UNKNOWN_RESIDENT")
    assert unknown.json()["local_ids"] == ["NOBODY"]
    assert numbers_of(world)[ids[1]] is None
    assert issue(client, world, limit=0).json()["code"] == "BAD_LIMIT"


def test_each_municipality_has_its_own_sequence_and_only_its_own_staff_issue(
    client: TestClient, world: World
) -> None:
    add_residents(world, 1)
    add_residents(world, 1, municipality="131041", start=5)

    refused = [issue(client, world, who=who) for who in ("other_municipality", "admin", "site")]
    own = issue(client, world, who="other_municipality", code="131041")

    assert [(a.status_code, a.json()["code"]) for a in refused] == [
        (403, "OTHER_TENANT"), (403, "ROLE_NOT_ALLOWED"), (403, "ROLE_NOT_ALLOWED"),
    ]  # fmt: skip
    assert numbers_of(world) == {"L000000": None}
    assert own.json()["issued"] == [
        {"local_id": "L000005", "coupon_number": make_damm_coupon_number(1)}
    ]
    assert issue(client, world).json()["issued"][0]["coupon_number"] == make_damm_coupon_number(1)


def test_concurrent_issuers_never_hand_out_one_number_twice(world: World) -> None:
    add_residents(world, 40)
    with Session(world.engine) as s:
        actor = authenticate(s, world.tokens["municipality"])
    results: list[list[str]] = []
    failures: list[BaseException] = []

    def worker(batch: list[str]) -> None:
        try:
            with Session(world.engine, expire_on_commit=False) as s:
                done = issue_coupons(
                    s, actor=actor, municipality_code=M, local_ids=batch, limit=100, now=NOW
                )
            results.append([c.coupon_number for c in done.issued])
        except BaseException as exc:  # reported below
            failures.append(exc)

    ids = sorted(numbers_of(world))
    threads = [threading.Thread(target=worker, args=(ids[n::8],)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    issued = [n for r in results for n in r]
    assert sorted(issued) == sorted(make_damm_coupon_number(n) for n in range(1, 41))
    assert len(set(numbers_of(world).values())) == 40


@given(st.integers(min_value=0, max_value=999_999_999))
def test_every_issued_number_carries_its_damm_digit(serial: int) -> None:
    number = make_damm_coupon_number(serial)
    assert len(number) == 10 and number[:9] == f"{serial:09d}" and is_valid_damm(number)
