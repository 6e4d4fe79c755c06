"""Posting dose records: idempotency, conflicts, locks, every reject code, batches, races."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlmodel import Session

from tests.conftest import Clock, World
from tests.vrs.dose_support import (
    GOOD_LOT,
    add_lots,
    add_resident,
    body,
    coupon_number,
    line,
)
from vrs.app import create_app
from vrs.db.models import AuditLog, Device, DoseRecord, DoseRecordEvent, QualityFlag
from vrs.domain import doses
from vrs.domain.auth import authenticate
from vrs.domain.errors import DomainError
from vrs.domain.places import add_municipality
from vrs.domain.reference import SPIKEVAX
from vrs.domain.rules import reevaluate_series
from vrs.settings import Settings

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def _lots(world: World) -> None:
    add_lots(world)


def post(client: TestClient, world: World, payload: Any, who: str = "site") -> httpx.Response:
    return client.post("/v1/dose-records", json=payload, headers=world.headers(who))


def count(world: World, model: Any, *where: Any) -> int:
    with world.session() as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


# ---------------------------------------------------------------------------------------
# Idempotency, conflicts, locks


def test_first_post_is_stored_and_a_retry_returns_it(client: TestClient, world: World) -> None:
    payload = body()
    first = post(client, world, payload)
    assert first.status_code == 201
    record = first.json()
    assert record["coupon_number"] == coupon_number(1)
    assert record["dose_number"] == 1
    assert record["status"] == "pending"
    assert record["flags"] == []
    again = post(client, world, payload)
    assert again.status_code == 200
    assert again.json()["id"] == record["id"]
    assert count(world, DoseRecord) == 1
    assert count(world, DoseRecordEvent, DoseRecordEvent.kind == "created") == 1


def test_same_dose_from_a_rescan_with_a_new_client_id_returns_the_stored_one(
    client: TestClient, world: World
) -> None:
    first = post(client, world, body()).json()
    rescan = post(client, world, body(source="ocr"))
    assert rescan.status_code == 200
    assert rescan.json()["id"] == first["id"]
    assert count(world, DoseRecord) == 1


def test_a_client_id_reused_for_another_record_is_refused(client: TestClient, world: World) -> None:
    client_id = str(uuid.uuid4())
    post(client, world, body(serial=1, client_record_id=client_id))
    reused = post(client, world, body(serial=2, client_record_id=client_id))
    assert reused.status_code == 409
    assert reused.json()["code"] == "CLIENT_ID_REUSED"
    assert count(world, DoseRecord) == 1


def test_other_content_for_a_stored_dose_is_a_conflict_flagged_once(
    client: TestClient, world: World
) -> None:
    stored = post(client, world, body(lot=GOOD_LOT)).json()
    disagreeing = body(vaccinated_on="2023-05-02")
    for _ in range(3):  # the tablet retries the same conflicting post
        answer = post(client, world, disagreeing)
        assert answer.status_code == 409
        assert answer.headers["content-type"] == PROBLEM
        problem = answer.json()
        assert problem["code"] == "CONFLICT"
        assert problem["record"]["id"] == stored["id"]
        assert problem["record"]["vaccinated_on"] == "2023-05-01"  # never overwritten
    assert count(world, QualityFlag, QualityFlag.rule_code == "CONFLICT") == 1
    assert count(world, DoseRecordEvent, DoseRecordEvent.kind == "conflict") == 1
    with world.session() as s:
        flag = s.execute(select(QualityFlag)).scalar_one()
        assert flag.severity == "conflict"
        assert flag.details is not None
        assert flag.details["incoming"]["vaccinated_on"] == "2023-05-02"
        assert flag.details["client_record_id"] == disagreeing["client_record_id"]
        assert flag.details["site_code"] == world.site
        assert flag.details["device_id"]
    listed = client.get(
        "/v1/dose-records", params={"coupon": line(1)}, headers=world.headers("municipality")
    ).json()["records"]
    assert [f["rule_code"] for f in listed[0]["flags"]] == ["CONFLICT"]
    # A second, different disagreement is a new case for review.
    assert post(client, world, body(vaccinated_on="2023-05-03")).status_code == 409
    assert count(world, QualityFlag, QualityFlag.rule_code == "CONFLICT") == 2


def test_a_verified_record_cannot_be_changed_by_an_upload(client: TestClient, world: World) -> None:
    stored = post(client, world, body()).json()
    with world.session() as s:
        s.execute(update(DoseRecord).values(locked=True))
        s.commit()
    for _ in range(2):
        answer = post(client, world, body(lot="ZZ9999"))
        assert answer.status_code == 409
        assert answer.json()["code"] == "RECORD_LOCKED"
        assert answer.json()["record"]["lot"] == GOOD_LOT
    assert count(world, QualityFlag, QualityFlag.rule_code == "RECORD_LOCKED") == 1
    same = post(client, world, body())
    assert same.status_code == 200
    assert same.json()["id"] == stored["id"]


# ---------------------------------------------------------------------------------------
# Reject rules


REJECTS: dict[str, tuple[dict[str, Any], int, str]] = {
    "short line": ({"coupon": "11131016"}, 422, "MALFORMED_COUPON"),
    "full-width digits": ({"coupon": "１" * 18}, 422, "MALFORMED_COUPON"),
    "dose number 0": ({"coupon": line(1, dose=0)}, 422, "MALFORMED_COUPON"),
    "ticket type 3": ({"coupon": "3" + line(1)[1:]}, 422, "MALFORMED_COUPON"),
    "screening ticket": ({"coupon": line(1, ticket=2)}, 422, "TICKET_NOT_VACCINATION"),
    "municipality check digit": (
        {"coupon": line(1, municipality="131017")},
        422,
        "BAD_MUNICIPALITY_CHECK_DIGIT",
    ),
    "coupon check digit": (
        {"coupon": line(1)[:-1] + str((int(line(1)[-1]) + 1) % 10)},
        422,
        "BAD_COUPON_CHECK_DIGIT",
    ),
    "unregistered municipality": (
        {"coupon": line(1, municipality="271004")},
        422,
        "UNKNOWN_MUNICIPALITY",
    ),
    "unknown product": ({"product": "EU/1/99/0000"}, 422, "UNKNOWN_PRODUCT"),
    "unknown site": ({"site_code": "1399999999"}, 422, "UNKNOWN_SITE"),
    "site code not digits": ({"site_code": "x" * 5000}, 422, "UNKNOWN_SITE"),
    "another site": ({"site_code": "1310000025"}, 403, "SITE_NOT_ENROLLED"),
    "tomorrow in Japan": ({"vaccinated_on": "2023-06-02"}, 422, "DATE_IN_FUTURE"),
    "before the programme": ({"vaccinated_on": "2021-02-16"}, 422, "DATE_BEFORE_PROGRAMME"),
    "no such day": ({"vaccinated_on": "2023-02-30"}, 422, "BAD_DATE"),
    "not ISO": ({"vaccinated_on": "01/05/2023"}, 422, "BAD_DATE"),
    "unknown source": ({"source": "fax"}, 422, "BAD_SOURCE"),
    "empty lot": ({"lot": "  "}, 422, "BAD_LOT"),
    "long lot": ({"lot": "L" * 41}, 422, "BAD_LOT"),
    "control character in lot": ({"lot": "FA\x0712"}, 422, "BAD_LOT"),
    "not a UUID": ({"client_record_id": "abc"}, 422, "INVALID_RECORD"),
    "long doctor name": ({"doctor_name": "医" * 101}, 422, "INVALID_RECORD"),
}


@pytest.mark.parametrize("case", sorted(REJECTS))
def test_each_reject_rule_refuses_the_record(case: str, client: TestClient, world: World) -> None:
    change, status, code = REJECTS[case]
    answer = post(client, world, {**body(), **change})
    assert answer.status_code == status, answer.json()
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == code
    assert count(world, DoseRecord) == 0


def test_today_is_the_date_in_japan(client: TestClient, world: World, clock: Clock) -> None:
    clock.now = datetime(2023, 6, 1, 15, 30, tzinfo=UTC)  # 00:30 on 2 June in Tokyo
    assert post(client, world, body(vaccinated_on="2023-06-02")).status_code == 201
    assert post(client, world, body(serial=2, vaccinated_on="2023-06-03")).status_code == 422


def test_the_first_day_of_the_programme_is_accepted(client: TestClient, world: World) -> None:
    assert post(client, world, body(vaccinated_on="2021-02-17")).status_code == 201


def test_legacy_municipalities_accept_numbers_without_a_check_digit(
    client: TestClient, world: World
) -> None:
    with world.session() as s:
        add_municipality(
            s, actor=_system(), code="271004", name="大阪市", now=_now(), coupon_format="legacy"
        )
        s.commit()
    legacy = "1" + "1" + "271004" + "1234567890"
    answer = post(client, world, {**body(), "coupon": legacy})
    assert answer.status_code == 201
    assert answer.json()["coupon_number"] == "1234567890"


def test_a_tablet_no_longer_enrolled_cannot_post(client: TestClient, world: World) -> None:
    with world.session() as s:
        s.execute(update(Device).values(active=False))
        s.commit()
    answer = post(client, world, body())
    assert answer.status_code == 403
    assert answer.json()["code"] == "DEVICE_NOT_ENROLLED"


def test_a_tablet_no_longer_enrolled_is_refused_even_when_no_record_parses(
    client: TestClient, world: World
) -> None:
    records = [{**body(), "coupon": "not a coupon"}, {"client_record_id": "x"}]
    enrolled = client.post(
        "/v1/dose-records/batch", headers=world.headers("site"), json={"records": records}
    )
    assert enrolled.status_code == 200
    assert [r["error"]["code"] for r in enrolled.json()["results"]] == [
        "MALFORMED_COUPON",
        "INVALID_RECORD",
    ]
    with world.session() as s:
        s.execute(update(Device).values(active=False))
        s.commit()
    refused = client.post(
        "/v1/dose-records/batch", headers=world.headers("site"), json={"records": records}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "DEVICE_NOT_ENROLLED"


@pytest.mark.parametrize("who", ["admin", "municipality"])
def test_only_site_tablets_post_records(who: str, client: TestClient, world: World) -> None:
    answer = post(client, world, body(), who=who)
    assert answer.status_code == 403
    assert answer.json()["code"] == "ROLE_NOT_ALLOWED"


def test_posting_needs_a_token(client: TestClient, world: World) -> None:
    answer = client.post("/v1/dose-records", json=body())
    assert answer.status_code == 401
    assert answer.headers["content-type"] == PROBLEM


# ---------------------------------------------------------------------------------------
# Residents


def test_a_known_coupon_is_recorded_for_its_resident(client: TestClient, world: World) -> None:
    local_id = add_resident(world, 7)
    record = post(client, world, body(serial=7)).json()
    assert record["status"] == "recorded"
    assert record["resident_local_id"] == local_id


def test_a_pending_record_is_matched_when_the_resident_arrives(
    client: TestClient, world: World
) -> None:
    pending = post(client, world, body(serial=8)).json()
    assert pending["status"] == "pending"
    local_id = add_resident(world, 8)
    with world.session() as s:
        reevaluate_series(s, world.municipality, [coupon_number(8)], _now())
        s.commit()
    listed = client.get(
        "/v1/dose-records", params={"coupon": line(8)}, headers=world.headers("municipality")
    ).json()["records"]
    assert listed[0]["status"] == "recorded"
    assert listed[0]["resident_local_id"] == local_id
    assert count(world, DoseRecordEvent, DoseRecordEvent.kind == "matched") == 1


# ---------------------------------------------------------------------------------------
# Batches


def test_a_batch_answers_every_record_on_its_own(client: TestClient, world: World) -> None:
    stored = post(client, world, body(serial=3)).json()
    good = body(serial=1)
    records = [
        good,
        {**body(serial=2), "coupon": "bad"},
        good,  # the same record twice in one batch: stored once
        body(serial=3, lot="OTHER1"),
        "not an object",
        {**body(serial=4), "coupon": 123456789012345678},
        body(serial=5, dose=2, vaccinated_on="2023-05-02"),
    ]
    answer = client.post(
        "/v1/dose-records/batch", json={"records": records}, headers=world.headers("site")
    )
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["index"] for r in results] == list(range(len(records)))
    assert [r["status"] for r in results] == [201, 422, 200, 409, 422, 422, 201]
    assert results[0]["record"]["id"] == results[2]["record"]["id"]
    assert results[1]["error"]["code"] == "MALFORMED_COUPON"
    assert results[3]["error"]["code"] == "CONFLICT"
    assert results[3]["error"]["record"]["id"] == stored["id"]
    assert results[4]["error"]["code"] == "INVALID_RECORD"
    assert results[5]["error"]["field"] == "coupon"
    assert {f["rule_code"] for f in results[6]["record"]["flags"]} == {"DOSE_NUMBER_GAP"}
    assert count(world, DoseRecord) == 3


def test_a_batch_of_a_thousand_is_stored(client: TestClient, world: World) -> None:
    records = [body(serial=n) for n in range(1000)]
    answer = client.post(
        "/v1/dose-records/batch", json={"records": records}, headers=world.headers("site")
    )
    assert answer.status_code == 200
    assert {r["status"] for r in answer.json()["results"]} == {201}
    assert count(world, DoseRecord) == 1000
    again = client.post(
        "/v1/dose-records/batch", json={"records": records}, headers=world.headers("site")
    )
    assert {r["status"] for r in again.json()["results"]} == {200}
    assert count(world, DoseRecord) == 1000


@pytest.mark.parametrize("size", [1001, 2000])
def test_a_batch_over_a_thousand_is_refused_whole(
    size: int, client: TestClient, world: World
) -> None:
    answer = client.post(
        "/v1/dose-records/batch",
        json={"records": [body(serial=n) for n in range(size)]},
        headers=world.headers("site"),
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "BATCH_TOO_LARGE"
    assert count(world, DoseRecord) == 0


def test_only_site_tablets_post_batches(client: TestClient, world: World) -> None:
    answer = client.post(
        "/v1/dose-records/batch", json={"records": [body()]}, headers=world.headers("admin")
    )
    assert answer.status_code == 403


# ---------------------------------------------------------------------------------------
# Hostile input: always a 4xx problem document, never a 500


HOSTILE: dict[str, Callable[[], dict[str, Any]]] = {
    "not JSON": lambda: {
        "content": b"{not json",
        "headers": {"content-type": "application/json"},
    },
    "JSON array": lambda: {"json": [1, 2, 3]},
    "JSON null": lambda: {"json": None},
    "number for coupon": lambda: {"json": {**body(), "coupon": 11131016}},
    "object for lot": lambda: {"json": {**body(), "lot": {"a": 1}}},
    "missing fields": lambda: {"json": {"coupon": line(1)}},
    "a megabyte of coupon": lambda: {"json": {**body(), "coupon": "1" * 1_000_000}},
    "a megabyte of lot": lambda: {"json": {**body(), "lot": "A" * 1_000_000}},
    "NUL in product": lambda: {"json": {**body(), "product": "EU/1/20/1528\x00"}},
    "body over the limit": lambda: {
        "content": b'{"lot": "' + b"A" * (5 * 1024 * 1024) + b'"}',
        "headers": {"content-type": "application/json"},
    },
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_single_posts_get_a_problem_document(
    case: str, client: TestClient, world: World
) -> None:
    kwargs = HOSTILE[case]()
    headers = {**world.headers("site"), **kwargs.pop("headers", {})}
    answer = client.post("/v1/dose-records", headers=headers, **kwargs)
    assert 400 <= answer.status_code < 500
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"]
    assert count(world, DoseRecord) == 0


@pytest.mark.parametrize(
    "payload",
    [{"records": "x"}, {"records": None}, {"records": {"a": 1}}, {}, [1], {"records": [[]] * 3}],
)
def test_hostile_batches_get_a_problem_document_or_per_record_errors(
    payload: Any, client: TestClient, world: World
) -> None:
    answer = client.post("/v1/dose-records/batch", json=payload, headers=world.headers("site"))
    if answer.status_code == 200:
        assert {r["status"] for r in answer.json()["results"]} == {422}
    else:
        assert answer.status_code == 422
        assert answer.headers["content-type"] == PROBLEM


# ---------------------------------------------------------------------------------------
# Listing and tenancy


def test_the_municipality_lists_its_coupon_with_flags_and_the_read_is_audited(
    client: TestClient, world: World
) -> None:
    post(client, world, body(serial=4, dose=2, vaccinated_on="2023-05-01", lot="NOPE01"))
    for query in ({"coupon": line(4)}, {"coupon": coupon_number(4), "municipality": "131016"}):
        answer = client.get("/v1/dose-records", params=query, headers=world.headers("municipality"))
        assert answer.status_code == 200
        [record] = answer.json()["records"]
        assert {f["rule_code"] for f in record["flags"]} == {"DOSE_NUMBER_GAP", "LOT_UNKNOWN"}
    with world.session() as s:
        audits = s.execute(select(AuditLog).where(AuditLog.action == "dose_record.list")).all()
    assert len(audits) == 2
    assert audits[0][0].subject == coupon_number(4)
    assert audits[0][0].count == 1


def test_admin_lists_any_municipality(client: TestClient, world: World) -> None:
    post(client, world, body(serial=4))
    answer = client.get(
        "/v1/dose-records", params={"coupon": line(4)}, headers=world.headers("admin")
    )
    assert answer.status_code == 200
    assert len(answer.json()["records"]) == 1


@pytest.mark.parametrize(
    ("who", "code"), [("other_municipality", "OTHER_TENANT"), ("site", "ROLE_NOT_ALLOWED")]
)
def test_others_cannot_list_a_municipalitys_records(
    who: str, code: str, client: TestClient, world: World
) -> None:
    post(client, world, body(serial=4))
    answer = client.get("/v1/dose-records", params={"coupon": line(4)}, headers=world.headers(who))
    assert answer.status_code == 403
    assert answer.json()["code"] == code


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"coupon": coupon_number(4)}, "MISSING_MUNICIPALITY"),
        ({"coupon": line(4), "municipality": "131041"}, "MUNICIPALITY_MISMATCH"),
        ({"coupon": "12"}, "MALFORMED_COUPON"),
        ({"coupon": coupon_number(4), "municipality": "131017"}, "BAD_MUNICIPALITY_CODE"),
    ],
)
def test_listing_queries_must_name_one_coupon(
    params: dict[str, str], code: str, client: TestClient, world: World
) -> None:
    answer = client.get("/v1/dose-records", params=params, headers=world.headers("municipality"))
    assert answer.status_code == 422
    assert answer.json()["code"] == code


# ---------------------------------------------------------------------------------------
# Races: fifty tablets (or retries) posting one record at once


def _race(world: World, payloads: list[dict[str, Any]]) -> list[str]:
    """Post ``payloads`` from as many threads, each with its own session, all at once."""
    barrier = threading.Barrier(len(payloads))
    outcomes: list[str] = []
    lock = threading.Lock()

    def one(payload: dict[str, Any]) -> None:
        with Session(world.engine, expire_on_commit=False) as s:
            principal = authenticate(s, world.tokens["site"])
            s.rollback()
            barrier.wait()
            try:
                outcome = doses.ingest(s, principal, payload, _now()).outcome.value
            except DomainError as exc:
                outcome = exc.code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def test_fifty_concurrent_posts_of_one_record_store_one_row(world: World) -> None:
    payload = body(serial=11)
    outcomes = _race(world, [payload] * 50)
    assert sorted(set(outcomes)) == ["created", "existing"]
    assert outcomes.count("created") == 1
    assert count(world, DoseRecord) == 1
    assert count(world, DoseRecordEvent, DoseRecordEvent.kind == "created") == 1


def test_fifty_concurrent_conflicting_posts_open_one_review_flag(
    client: TestClient, world: World
) -> None:
    post(client, world, body(serial=12))
    outcomes = _race(world, [body(serial=12, product=SPIKEVAX, lot="MD5678")] * 50)
    assert outcomes == ["CONFLICT"] * 50
    assert count(world, QualityFlag, QualityFlag.rule_code == "CONFLICT") == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(backend: str, settings: Settings, world: World, clock: Clock) -> Iterator[str]:
    if backend != "postgresql":
        pytest.skip("the HTTP race runs against PostgreSQL, the production store")
    port = _free_port()
    app = create_app(settings, engine=world.engine, clock=clock)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.postgres_only
def test_fifty_concurrent_http_posts_of_one_record_store_one_row(
    live_server: str, world: World
) -> None:
    payload = body(serial=13)
    barrier = threading.Barrier(50)
    statuses: list[int] = []

    def one() -> None:
        with httpx.Client(base_url=live_server, headers=world.headers("site"), timeout=60) as c:
            barrier.wait()
            statuses.append(c.post("/v1/dose-records", json=payload).status_code)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [200] * 49 + [201]
    assert count(world, DoseRecord) == 1


def _system() -> Any:
    from vrs.domain.auth import SYSTEM

    return SYSTEM


def _now() -> datetime:
    from tests.conftest import NOW

    return NOW
