"""Corrections, verification (the lock) and voids by the owning municipality, with history.

The 2021 overwrite bug (a corrected record overwritten by a later upload) is tested here on
both ingest paths: the portable SQLAlchemy path (SQLite and PostgreSQL) and the PostgreSQL
fast path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import NOW, Clock, World
from tests.vrs.dose_support import (
    GOOD_LOT,
    MODERNA_LOT,
    add_lots,
    add_resident,
    body,
    coupon_number,
    open_flag_codes,
)
from vrs.app import create_app
from vrs.db.models import AuditLog, Certificate, CertificateDoseRecord, DoseRecord
from vrs.domain.reference import SPIKEVAX
from vrs.settings import Settings

M = "131016"


@pytest.fixture(autouse=True)
def _lots(world: World) -> None:
    add_lots(world)


def post(client: TestClient, world: World, payload: dict[str, Any]) -> httpx.Response:
    return client.post("/v1/dose-records", json=payload, headers=world.headers("site"))


def recorded(client: TestClient, world: World, **kw: Any) -> dict[str, Any]:
    answer = post(client, world, body(**kw))
    assert answer.status_code == 201, answer.text
    record: dict[str, Any] = answer.json()
    return record


def correct(
    client: TestClient,
    world: World,
    record: dict[str, Any],
    changes: dict[str, Any],
    *,
    who: str = "municipality",
    reason: str = "paper form checked",
    version: int | None = None,
    municipality: str = M,
) -> httpx.Response:
    return client.post(
        f"/v1/municipalities/{municipality}/dose-records/{record['id']}/corrections",
        json={
            "version": record["version"] if version is None else version,
            "reason": reason,
            "changes": changes,
        },
        headers=world.headers(who),
    )


def verify(
    client: TestClient, world: World, record: dict[str, Any], who: str = "municipality"
) -> httpx.Response:
    return client.post(
        f"/v1/municipalities/{M}/dose-records/{record['id']}/verify",
        json={"version": record["version"]},
        headers=world.headers(who),
    )


def void(
    client: TestClient, world: World, record: dict[str, Any], who: str = "municipality"
) -> httpx.Response:
    return client.post(
        f"/v1/municipalities/{M}/dose-records/{record['id']}/void",
        json={"version": record["version"], "reason": "entered twice"},
        headers=world.headers(who),
    )


def history(client: TestClient, world: World, record: dict[str, Any]) -> dict[str, Any]:
    answer = client.get(
        f"/v1/municipalities/{M}/dose-records/{record['id']}/history",
        headers=world.headers("municipality"),
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


# ---------------------------------------------------------------------------------------
# Corrections


def test_a_correction_makes_a_new_version_keeps_the_old_values_and_reruns_the_rules(
    client: TestClient, world: World, clock: Clock
) -> None:
    recorded(client, world, serial=1, dose=1, vaccinated_on="2023-05-01")
    second = recorded(client, world, serial=1, dose=2, vaccinated_on="2023-05-10")
    assert open_flag_codes(second) == {"INTERVAL_TOO_SHORT"}
    clock.now += timedelta(minutes=5)

    answer = correct(client, world, second, {"vaccinated_on": "2023-05-22"})

    assert answer.status_code == 200, answer.text
    record = answer.json()["record"]
    assert (record["version"], record["vaccinated_on"]) == (2, "2023-05-22")
    assert open_flag_codes(record) == set()  # 21 days: the interval flag was resolved
    events = history(client, world, second)["events"]
    corrected = [e for e in events if e["kind"] == "corrected"]
    assert len(corrected) == 1
    assert corrected[0]["reason"] == "paper form checked"
    assert corrected[0]["before"]["vaccinated_on"] == "2023-05-10"
    assert corrected[0]["before"]["version"] == 1
    assert corrected[0]["after"]["vaccinated_on"] == "2023-05-22"
    assert corrected[0]["after"]["version"] == 2
    assert events[0]["kind"] == "created"
    with world.session() as s:
        logged = s.execute(
            select(AuditLog).where(AuditLog.action == "dose_record.corrected")  # type: ignore[arg-type]
        ).scalar_one()
    assert logged.purpose == "paper form checked"
    assert logged.subject == second["id"]


def test_a_correction_can_move_a_dose_to_the_right_coupon(client: TestClient, world: World) -> None:
    """The 2021 misread: a dose recorded on another person's coupon is moved to its owner."""
    add_resident(world, 1)
    owner = add_resident(world, 2)
    wrong = recorded(client, world, serial=1, dose=1)

    answer = correct(client, world, wrong, {"coupon_number": coupon_number(2)})

    assert answer.status_code == 200, answer.text
    record = answer.json()["record"]
    assert record["coupon_number"] == coupon_number(2)
    assert record["resident_local_id"] == owner


def test_a_correction_onto_a_recorded_dose_is_refused(client: TestClient, world: World) -> None:
    recorded(client, world, serial=1, dose=1)
    second = recorded(client, world, serial=1, dose=2, vaccinated_on="2023-05-30")

    answer = correct(client, world, second, {"dose_number": 1})

    assert answer.status_code == 409
    assert answer.json()["code"] == "DOSE_ALREADY_RECORDED"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"vaccinated_on": "2023-06-02"}, "DATE_IN_FUTURE"),
        ({"vaccinated_on": "2021-02-16"}, "DATE_BEFORE_PROGRAMME"),
        ({"vaccinated_on": "yesterday"}, "BAD_DATE"),
        ({"product": "EU/1/99/0000"}, "UNKNOWN_PRODUCT"),
        ({"lot": "  "}, "BAD_LOT"),
        ({"site_code": "9999999999"}, "UNKNOWN_SITE"),
        ({"coupon_number": "0000000010"}, "BAD_COUPON_CHECK_DIGIT"),
        ({"coupon_number": "12345"}, "BAD_FIELD"),
        ({"dose_number": 0}, "BAD_FIELD"),
        ({"dose_number": "2"}, "BAD_FIELD"),
        ({"resident_local_id": "R1"}, "UNKNOWN_FIELD"),
        ({"locked": False}, "UNKNOWN_FIELD"),
        ({}, "NO_CHANGE"),
        ({"lot": GOOD_LOT}, "NO_CHANGE"),
    ],
)
def test_a_correction_with_bad_values_is_refused_and_changes_nothing(
    client: TestClient, world: World, changes: dict[str, Any], code: str
) -> None:
    record = recorded(client, world, serial=1)

    answer = correct(client, world, record, changes)

    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code
    assert [e["kind"] for e in history(client, world, record)["events"]] == ["created"]


def test_a_correction_needs_a_reason(client: TestClient, world: World) -> None:
    record = recorded(client, world, serial=1)
    answer = correct(client, world, record, {"lot": MODERNA_LOT}, reason="   ")
    assert answer.status_code == 422
    assert answer.json()["code"] == "MISSING_REASON"


def test_a_correction_against_an_old_version_is_refused(client: TestClient, world: World) -> None:
    record = recorded(client, world, serial=1)
    assert correct(client, world, record, {"lot": "LOT2"}).status_code == 200

    stale = correct(client, world, record, {"lot": "LOT3"})

    assert stale.status_code == 409
    assert stale.json()["code"] == "VERSION_MISMATCH"
    assert stale.json()["record"]["lot"] == "LOT2"


# ---------------------------------------------------------------------------------------
# Tenancy: every write is the owning municipality's alone


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("other_municipality", "OTHER_TENANT"),
        ("admin", "ROLE_NOT_ALLOWED"),
        ("site", "ROLE_NOT_ALLOWED"),
    ],
)
def test_only_the_owning_municipality_corrects_verifies_and_voids(
    client: TestClient, world: World, who: str, code: str
) -> None:
    record = recorded(client, world, serial=1)

    answers = [
        correct(client, world, record, {"lot": "LOT2"}, who=who),
        verify(client, world, record, who=who),
        void(client, world, record, who=who),
    ]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(403, code)] * 3
    stored = history(client, world, record)
    assert [e["kind"] for e in stored["events"]] == ["created"]
    assert (stored["record"]["version"], stored["record"]["locked"]) == (1, False)


def test_another_municipality_cannot_reach_a_record_through_its_own_code(
    client: TestClient, world: World
) -> None:
    """Shinjuku naming its own code in the path still finds nothing of Chiyoda's."""
    record = recorded(client, world, serial=1)
    answer = correct(
        client, world, record, {"lot": "LOT2"}, who="other_municipality", municipality="131041"
    )
    assert answer.status_code == 404
    assert answer.json()["code"] == "RECORD_NOT_FOUND"
    looked = client.get(
        f"/v1/municipalities/131041/dose-records/{record['id']}/history",
        headers=world.headers("other_municipality"),
    )
    assert (looked.status_code, looked.json()["code"]) == (404, "RECORD_NOT_FOUND")


def test_history_is_readable_by_the_municipality_and_the_operator_only(
    client: TestClient, world: World
) -> None:
    record = recorded(client, world, serial=1)
    url = f"/v1/municipalities/{M}/dose-records/{record['id']}/history"
    assert client.get(url, headers=world.headers("admin")).status_code == 200
    refused = client.get(url, headers=world.headers("other_municipality"))
    assert (refused.status_code, refused.json()["code"]) == (403, "OTHER_TENANT")
    refused = client.get(url, headers=world.headers("site"))
    assert (refused.status_code, refused.json()["code"]) == (403, "ROLE_NOT_ALLOWED")
    bad = client.get(f"/v1/municipalities/{M}/dose-records/not-a-uuid/history",
                     headers=world.headers("municipality"))  # fmt: skip
    assert (bad.status_code, bad.json()["code"]) == (404, "RECORD_NOT_FOUND")


# ---------------------------------------------------------------------------------------
# Verify (lock) and the 2021 overwrite bug, on both ingest paths


@pytest.fixture(params=["portable", "fast"])
def ingest_client(
    request: pytest.FixtureRequest, backend: str, settings: Settings, world: World, clock: Clock
) -> Iterator[TestClient]:
    """An app taking tablets' posts through one ingest path (fast: PostgreSQL only)."""
    fast = request.param == "fast"
    if fast and backend != "postgresql":
        pytest.skip("the fast ingest path runs on PostgreSQL only")
    app = create_app(settings, engine=world.engine, clock=clock, cache_ttl=0, ingest_fast_path=fast)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert (app.state.ingestor.pool is not None) == fast
        yield c


def test_a_verified_record_is_never_changed_by_a_later_upload(
    ingest_client: TestClient, world: World, clock: Clock
) -> None:
    client = ingest_client
    first = recorded(client, world, serial=1, lot="LOT-TABLET")
    fixed = correct(client, world, first, {"lot": GOOD_LOT}, reason="lot sticker on the form")
    assert fixed.status_code == 200
    locked = verify(client, world, fixed.json()["record"])
    assert locked.status_code == 200
    assert locked.json()["record"]["locked"] is True
    clock.now += timedelta(hours=1)

    # The bug of 2021: a later upload of the tablet's old content over the corrected record.
    single = post(client, world, body(serial=1, lot="LOT-TABLET"))
    batch = client.post(
        "/v1/dose-records/batch",
        json={"records": [body(serial=1, lot="LOT-TABLET"), body(serial=1, lot="LOT-X")]},
        headers=world.headers("site"),
    )  # fmt: skip

    assert (single.status_code, single.json()["code"]) == (409, "RECORD_LOCKED")
    assert [r["error"]["code"] for r in batch.json()["results"]] == ["RECORD_LOCKED"] * 2
    stored = history(client, world, first)["record"]
    assert (stored["lot"], stored["vaccinated_on"], stored["version"], stored["locked"]) == (
        GOOD_LOT, "2023-05-01", 2, True,
    )  # fmt: skip
    # The same content again is a harmless retry.
    same = post(client, world, body(serial=1, lot=GOOD_LOT))
    assert (same.status_code, same.json()["version"]) == (200, 2)


def test_only_a_logged_correction_changes_a_verified_record(
    client: TestClient, world: World, clock: Clock
) -> None:
    first = recorded(client, world, serial=1)
    locked = verify(client, world, first).json()["record"]
    clock.now += timedelta(minutes=1)

    by_other = correct(client, world, locked, {"lot": "LOT2"}, who="other_municipality")
    by_owner = correct(client, world, locked, {"lot": "LOT2"}, reason="wrong sticker")

    assert by_other.status_code == 403
    assert by_owner.status_code == 200
    assert by_owner.json()["record"]["locked"] is True
    events = [e for e in history(client, world, first)["events"] if e["kind"] != "flagged"]
    assert [e["kind"] for e in events] == ["created", "verified", "corrected"]
    assert events[2]["before"]["locked"] is True
    with world.session() as s:
        logged = s.execute(
            select(AuditLog).where(AuditLog.action == "dose_record.corrected")  # type: ignore[arg-type]
        ).scalar_one()
    assert logged.details is not None and logged.details["was_locked"] is True


def test_verify_is_refused_while_a_conflict_is_open_and_repeats_harmlessly(
    client: TestClient, world: World, clock: Clock
) -> None:
    first = recorded(client, world, serial=1)
    assert post(client, world, body(serial=1, lot="OTHER")).status_code == 409

    refused = verify(client, world, first)

    assert (refused.status_code, refused.json()["code"]) == (409, "OPEN_CONFLICT")
    [item] = review_items(client, world, severity="conflict")
    resolve(client, world, item["flag_id"], "keep_stored").raise_for_status()
    assert verify(client, world, first).status_code == 200
    again = verify(client, world, first)
    assert again.status_code == 200
    kinds = [e["kind"] for e in history(client, world, first)["events"]]
    assert kinds.count("verified") == 1


# ---------------------------------------------------------------------------------------
# Void


def test_a_void_takes_the_dose_out_of_the_series_and_closes_its_flags(
    client: TestClient, world: World, clock: Clock
) -> None:
    first = recorded(client, world, serial=1, dose=1, vaccinated_on="2023-05-01")
    second = recorded(client, world, serial=1, dose=2, vaccinated_on="2023-05-10")
    assert open_flag_codes(second) == {"INTERVAL_TOO_SHORT"}
    clock.now += timedelta(minutes=1)

    voided = void(client, world, first)

    assert voided.status_code == 200, voided.text
    assert (voided.json()["record"]["status"], voided.json()["record"]["version"]) == ("voided", 2)
    after = history(client, world, second)["record"]
    assert open_flag_codes(after) == {"DOSE_NUMBER_GAP"}  # dose 1 no longer counts
    assert [e["kind"] for e in history(client, world, first)["events"]] == ["created", "voided"]
    again = void(client, world, voided.json()["record"])
    assert (again.status_code, again.json()["code"]) == (409, "RECORD_VOIDED")
    fix = correct(client, world, voided.json()["record"], {"lot": "LOT2"})
    assert (fix.status_code, fix.json()["code"]) == (409, "RECORD_VOIDED")
    # An upload of the voided dose does not bring it back.
    assert post(client, world, body(serial=1, dose=1, lot="LOT2")).status_code == 409
    with world.session() as s:
        row = s.execute(
            select(DoseRecord).where(DoseRecord.id == uuid.UUID(first["id"]))
        ).scalar_one()  # type: ignore[arg-type]
    assert row.status == "voided"


# ---------------------------------------------------------------------------------------
# Review queue and conflicts


def review_items(
    client: TestClient, world: World, who: str = "municipality", **params: Any
) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/municipalities/{M}/review", params=params, headers=world.headers(who))
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    assert answer.json()["total"] >= len(items)
    return items


def resolve(
    client: TestClient, world: World, flag_id: str, action: str, who: str = "municipality"
) -> httpx.Response:
    return client.post(
        f"/v1/municipalities/{M}/review/{flag_id}/resolve",
        json={"action": action, "reason": "checked the paper form"},
        headers=world.headers(who),
    )


def test_the_review_queue_shows_what_the_rule_saw_and_filters(
    client: TestClient, world: World
) -> None:
    recorded(client, world, serial=1, dose=1, vaccinated_on="2023-05-01")
    recorded(client, world, serial=1, dose=2, vaccinated_on="2023-05-10")
    recorded(client, world, serial=2, lot="NOPE01", vaccinated_on="2023-04-01")
    recorded(client, world, serial=3, lot="NOPE02", site=world.site, vaccinated_on="2023-03-01")

    everything = review_items(client, world)
    interval = review_items(client, world, rule="INTERVAL_TOO_SHORT")
    lots_in_april = review_items(client, world, rule="LOT_UNKNOWN", **{"from": "2023-04-01"})
    other_site = review_items(client, world, site=world.other_site)

    assert sorted(i["rule_code"] for i in everything) == [
        "INTERVAL_TOO_SHORT", "LOT_UNKNOWN", "LOT_UNKNOWN",
    ]  # fmt: skip
    [item] = interval
    assert item["details"]["days"] == 9 and item["details"]["earliest"] == "2023-05-20"
    assert [s["dose_number"] for s in item["series"]] == [1]
    assert item["record"]["dose_number"] == 2
    assert [i["record"]["lot"] for i in lots_in_april] == ["NOPE01"]
    assert other_site == []
    assert len(review_items(client, world, who="admin")) == 3


def test_the_review_queue_is_refused_to_other_tenants_and_checks_its_filters(
    client: TestClient, world: World
) -> None:
    url = f"/v1/municipalities/{M}/review"
    for who, code in (("other_municipality", "OTHER_TENANT"), ("site", "ROLE_NOT_ALLOWED")):
        answer = client.get(url, headers=world.headers(who))
        assert (answer.status_code, answer.json()["code"]) == (403, code)
    for params in ({"from": "2023-13-01"}, {"site": "12"}, {"limit": 0}, {"severity": "x"}):
        answer = client.get(url, params=params, headers=world.headers("municipality"))
        assert (answer.status_code, answer.json()["code"]) == (422, "BAD_FILTER")


def test_taking_the_incoming_side_of_a_conflict_keeps_both_versions(
    client: TestClient, world: World, clock: Clock
) -> None:
    first = recorded(client, world, serial=1, lot=GOOD_LOT)
    clock.now += timedelta(minutes=1)
    other = body(serial=1, lot=MODERNA_LOT, product=SPIKEVAX, site=world.site)
    assert post(client, world, other).status_code == 409
    [item] = review_items(client, world, severity="conflict")
    assert item["details"]["incoming"]["lot"] == MODERNA_LOT
    clock.now += timedelta(minutes=1)

    refused = resolve(client, world, item["flag_id"], "take_incoming", who="other_municipality")
    taken = resolve(client, world, item["flag_id"], "take_incoming")

    assert refused.status_code == 403
    assert taken.status_code == 200, taken.text
    record = taken.json()["record"]
    assert (record["lot"], record["product"], record["version"]) == (MODERNA_LOT, SPIKEVAX, 2)
    events = history(client, world, first)["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["created", "conflict"]
    assert set(kinds[2:]) == {"corrected", "conflict_resolved"}
    decided = next(e for e in events if e["kind"] == "conflict_resolved")
    assert decided["before"]["stored"]["lot"] == GOOD_LOT
    assert decided["before"]["incoming"]["lot"] == MODERNA_LOT
    assert decided["after"]["action"] == "take_incoming"
    assert review_items(client, world, severity="conflict") == []
    again = resolve(client, world, item["flag_id"], "keep_stored")
    assert (again.status_code, again.json()["code"]) == (409, "FLAG_RESOLVED")


def test_keeping_the_stored_side_and_dismissing_a_flag(client: TestClient, world: World) -> None:
    first = recorded(client, world, serial=1, lot="NOPE01")
    assert post(client, world, body(serial=1, lot="NOPE02")).status_code == 409
    items = {i["rule_code"]: i for i in review_items(client, world)}
    assert set(items) == {"LOT_UNKNOWN", "CONFLICT"}

    wrong = resolve(client, world, items["LOT_UNKNOWN"]["flag_id"], "keep_stored")
    kept = resolve(client, world, items["CONFLICT"]["flag_id"], "keep_stored")
    dismissed = resolve(client, world, items["LOT_UNKNOWN"]["flag_id"], "dismiss")

    assert (wrong.status_code, wrong.json()["code"]) == (422, "BAD_ACTION")
    assert kept.status_code == 200 and dismissed.status_code == 200
    assert kept.json()["record"]["lot"] == "NOPE01"
    assert review_items(client, world) == []
    kinds = [e["kind"] for e in history(client, world, first)["events"]]
    assert "conflict_resolved" in kinds
    missing = resolve(client, world, "00000000-0000-0000-0000-000000000000", "dismiss")
    assert (missing.status_code, missing.json()["code"]) == (404, "FLAG_NOT_FOUND")


# ---------------------------------------------------------------------------------------
# Certificates made from a changed record are revoked


def certificate_from(world: World, record: dict[str, Any], uvci: str) -> None:
    """A certificate row made from ``record`` (as the certificate service stores one)."""
    with world.session() as s:
        s.add(
            Certificate(
                municipality_code=M,
                uvci=uvci,
                resident_local_id="R000000001",
                kind="domestic",
                dose_number=record["dose_number"],
                issued_at=NOW,
                expires_at=NOW + timedelta(days=365),
                kid="00" * 8,
                signature_hash="ab" * 16,
                uci_hash="11" * 16,
                countrycode_uci_hash="22" * 16,
                hc1="HC1:TEST",
                channel="self",
            )
        )
        s.add(
            CertificateDoseRecord(
                municipality_code=M,
                dose_record_id=uuid.UUID(record["id"]),
                uvci=uvci,
                certificate_municipality_code=M,
                dose_record_version=record["version"],
            )
        )
        s.commit()


def certificate_status(world: World, uvci: str) -> str:
    with world.session() as s:
        cert = s.get(Certificate, (M, uvci))
        assert cert is not None
        return cert.status


def test_a_correction_or_a_void_revokes_the_certificates_made_from_the_record(
    client: TestClient, world: World, clock: Clock
) -> None:
    first = recorded(client, world, serial=1, dose=1, vaccinated_on="2023-04-01")
    second = recorded(client, world, serial=1, dose=2, vaccinated_on="2023-05-01")
    certificate_from(world, first, "URN:UVCI:01:JP:FIRST")
    certificate_from(world, second, "URN:UVCI:01:JP:SECOND")
    clock.now += timedelta(minutes=1)

    corrected = correct(client, world, first, {"vaccinated_on": "2023-04-02"})
    voided = void(client, world, second)

    assert corrected.json()["revoked_certificates"] == 1
    assert voided.json()["revoked_certificates"] == 1
    assert certificate_status(world, "URN:UVCI:01:JP:FIRST") == "revoked"
    assert certificate_status(world, "URN:UVCI:01:JP:SECOND") == "revoked"
    verified = verify(client, world, corrected.json()["record"])
    assert verified.json()["revoked_certificates"] == 0  # a lock changes no content
