"""The two ingest paths agree: the SQLAlchemy path is the cross-check of the PostgreSQL fast path.

Each test builds two apps on one PostgreSQL database: ``fast`` (``ingest_fast_path=True``,
the asynchronous psycopg path) and ``portable`` (``ingest_fast_path=False``, the SQLAlchemy
path every other engine uses). A scenario runs once through each, the fast one on coupons of
千代田区 (131016) and the portable one on the same coupon numbers of 新宿区 (131041), so the
two never touch one series. Then the answers (status and body, without ids, timestamps,
client ids and the municipality) and what was stored (records, flags, events per record)
must be the same. Each test also checks what the scenario is meant to show, so two paths
broken alike still fail.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.conftest import NOW, Clock, World
from tests.vrs.dose_support import (
    EXPIRED_LOT,
    GOOD_LOT,
    MODERNA_LOT,
    add_lots,
    add_resident,
    body,
    coupon_number,
    line,
)
from vrs.app import create_app
from vrs.db.models import DoseRecord, DoseRecordEvent, QualityFlag
from vrs.domain.reference import COMIRNATY, SPIKEVAX
from vrs.domain.rules import SeriesDose, dose_date_order
from vrs.settings import Settings

UNKNOWN_LOT = "NOPE01"
#: Fields that differ between the two runs of one scenario by construction.
UNCOMPARED = frozenset({"id", "registered_at", "client_record_id", "municipality_code"})


@dataclass
class Lane:
    """One app and the municipality whose coupons it is given."""

    name: str
    app: FastAPI
    client: TestClient
    world: World
    municipality: str

    def body(self, serial: int, dose: int = 1, **kw: Any) -> dict[str, Any]:
        return body(serial, dose, municipality=self.municipality, **kw)

    def post(self, payload: dict[str, Any]) -> httpx.Response:
        return self.client.post(
            "/v1/dose-records", json=payload, headers=self.world.headers("site")
        )

    def batch(self, records: list[Any]) -> httpx.Response:
        return self.client.post(
            "/v1/dose-records/batch", json={"records": records}, headers=self.world.headers("site")
        )

    def add_resident(self, serial: int, **kw: Any) -> str:
        return add_resident(self.world, serial, municipality=self.municipality, **kw)

    def lock(self, serial: int, dose: int) -> None:
        with self.world.session() as s:
            s.execute(
                update(DoseRecord)
                .where(
                    DoseRecord.municipality_code == self.municipality,  # type: ignore[arg-type]
                    DoseRecord.coupon_number == coupon_number(serial),  # type: ignore[arg-type]
                    DoseRecord.dose_number == dose,  # type: ignore[arg-type]
                )
                .values(locked=True)
            )
            s.commit()

    def listing(self, serial: int) -> list[dict[str, Any]]:
        answer = self.client.get(
            "/v1/dose-records",
            params={"coupon": line(serial, municipality=self.municipality)},
            headers=self.world.headers("admin"),
        )
        assert answer.status_code == 200
        records: list[dict[str, Any]] = answer.json()["records"]
        return records

    def stored(self) -> dict[tuple[str, int], dict[str, Any]]:
        """Every record of this lane's municipality with its flags (open and resolved) and
        the kinds of its events, by coupon number and dose number."""
        with self.world.session() as s:
            records = s.execute(
                select(DoseRecord).where(DoseRecord.municipality_code == self.municipality)  # type: ignore[arg-type]
            ).scalars()
            flags = s.execute(
                select(QualityFlag).where(QualityFlag.municipality_code == self.municipality)  # type: ignore[arg-type]
            ).scalars()
            events = s.execute(
                select(DoseRecordEvent).where(
                    DoseRecordEvent.municipality_code == self.municipality  # type: ignore[arg-type]
                )
            ).scalars()
            flags_of: dict[uuid.UUID, list[tuple[Any, ...]]] = {}
            for f in flags:
                flags_of.setdefault(f.dose_record_id, []).append(
                    (f.rule_code, f.severity, f.message, f.resolution)
                )
            events_of: dict[uuid.UUID, list[str]] = {}
            for e in events:
                events_of.setdefault(e.dose_record_id, []).append(e.kind)
            return {
                (r.coupon_number, r.dose_number): {
                    "status": r.status,
                    "resident_local_id": r.resident_local_id,
                    "content": (r.vaccinated_on, r.product_code, r.lot_number, r.site_code),
                    "locked": r.locked,
                    "version": r.version,
                    "flags": sorted(flags_of.get(r.id, [])),
                    "events": sorted(events_of.get(r.id, [])),
                }
                for r in records
            }


@dataclass
class Lanes:
    fast: Lane
    portable: Lane

    def run(self, scenario: Callable[[Lane], list[Any]]) -> tuple[list[Any], list[Any]]:
        """Run ``scenario`` on both lanes; its answers on each, compared by the caller."""
        return scenario(self.fast), scenario(self.portable)

    def assert_same_stored(self) -> dict[tuple[str, int], dict[str, Any]]:
        fast, portable = self.fast.stored(), self.portable.stored()
        assert fast == portable
        return fast


@pytest.fixture
def lanes(backend: str, settings: Settings, world: World, clock: Clock) -> Iterator[Lanes]:
    if backend != "postgresql":
        pytest.skip("SQLite has one ingest path only; the fast path needs PostgreSQL")
    add_lots(world)
    with ExitStack() as stack:

        def lane(name: str, fast_path: bool, municipality: str) -> Lane:
            app = create_app(
                settings, engine=world.engine, clock=clock, cache_ttl=0, ingest_fast_path=fast_path
            )
            client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
            return Lane(name, app, client, world, municipality)

        yield Lanes(
            fast=lane("fast", True, world.municipality),
            portable=lane("portable", False, world.other_municipality),
        )


def seen(response: httpx.Response) -> tuple[int, Any]:
    """The status and body of an answer, :func:`normal`."""
    return response.status_code, normal(response.json())


def normal(value: Any) -> Any:
    """A body without what differs by construction; flags in a fixed order (neither path
    promises one)."""
    if isinstance(value, dict):
        out = {k: normal(v) for k, v in value.items() if k not in UNCOMPARED}
        if isinstance(out.get("flags"), list):
            out["flags"] = sorted(out["flags"], key=lambda f: sorted(f.items()))
        return out
    if isinstance(value, list):
        return [normal(v) for v in value]
    return value


def status_and_code(answer: tuple[int, Any]) -> tuple[int, str | None]:
    status, document = answer
    return status, document.get("code")


def summary(answer: tuple[int, Any]) -> tuple[int, str | None, list[str]]:
    """Status, error code and the sorted flag codes of the record an answer carries."""
    status, document = answer
    record = document.get("record", document)
    return status, document.get("code"), sorted(f["rule_code"] for f in record.get("flags", []))


def flag_codes(answer: tuple[int, Any]) -> set[str]:
    _, document = answer
    record = document.get("record", document)
    return {f["rule_code"] for f in record["flags"]}


# ---------------------------------------------------------------------------------------
# The fast path is really taken


def test_the_fast_app_writes_through_its_pool_and_the_portable_app_has_none(
    lanes: Lanes,
) -> None:
    fast, portable = lanes.fast.app.state.ingestor, lanes.portable.app.state.ingestor
    assert fast.pool is not None
    assert not fast._lazy.opened  # opened on first use, not before
    assert lanes.fast.post(lanes.fast.body(1)).status_code == 201
    assert lanes.fast.batch([lanes.fast.body(2)]).status_code == 200
    assert fast._lazy.opened
    assert fast.pool.get_stats()["requests_num"] >= 2  # a pooled connection per write
    assert lanes.portable.post(lanes.portable.body(1)).status_code == 201
    assert lanes.portable.batch([lanes.portable.body(2)]).status_code == 200
    assert portable.pool is None
    assert len(lanes.assert_same_stored()) == 2


# ---------------------------------------------------------------------------------------
# Scenarios


def test_flag_rules_open_and_resolve_alike(lanes: Lanes) -> None:
    def scenario(lane: Lane) -> list[Any]:
        lane.add_resident(7, birth_date=date(2023, 1, 1))  # four months old on 2023-05-01
        posts = [
            # DOSE_DATE_ORDER: dose 2 before dose 1.
            lane.body(1, 1, vaccinated_on="2023-05-01"),
            lane.body(1, 2, vaccinated_on="2023-04-20"),
            # DOSE_NUMBER_GAP, resolved on dose 3 when dose 2 arrives, then on dose 2 by dose 1.
            lane.body(2, 3, vaccinated_on="2023-05-01"),
            lane.body(2, 2, vaccinated_on="2023-01-10"),
            lane.body(2, 1, vaccinated_on="2022-12-01"),
            # INTERVAL_TOO_SHORT: Comirnaty 1 -> 2 after 9 days (earliest 19).
            lane.body(3, 1, vaccinated_on="2023-05-01"),
            lane.body(3, 2, vaccinated_on="2023-05-10"),
            lane.body(4, lot=UNKNOWN_LOT),  # LOT_UNKNOWN
            lane.body(5, lot=MODERNA_LOT),  # LOT_PRODUCT_MISMATCH: a Spikevax lot
            lane.body(6, lot=EXPIRED_LOT),  # LOT_EXPIRED
            lane.body(7),  # AGE_OUT_OF_RANGE
            lane.body(8, product=SPIKEVAX, lot=MODERNA_LOT),  # no flag
        ]
        return [seen(lane.post(p)) for p in posts] + [normal(lane.listing(2))]

    fast, portable = lanes.run(scenario)
    assert fast == portable
    *answers, listed = fast
    assert {a[0] for a in answers} == {201}
    assert [flag_codes(a) for a in answers] == [
        set(),
        {"DOSE_DATE_ORDER"},
        {"DOSE_NUMBER_GAP"},
        {"DOSE_NUMBER_GAP"},
        set(),
        set(),
        {"INTERVAL_TOO_SHORT"},
        {"LOT_UNKNOWN"},
        {"LOT_PRODUCT_MISMATCH"},
        {"LOT_EXPIRED"},
        {"AGE_OUT_OF_RANGE"},
        set(),
    ]
    assert [r["flags"] for r in listed] == [[], [], []]  # both gaps resolved
    stored = lanes.assert_same_stored()
    first = stored[(coupon_number(1), 1)]
    assert [f[0] for f in first["flags"]] == ["DOSE_DATE_ORDER"]  # opened on dose 1 too
    dose_3 = stored[(coupon_number(2), 3)]
    assert dose_3["flags"][0][::3] == ("DOSE_NUMBER_GAP", "rule no longer applies")
    assert dose_3["events"] == ["created", "flagged"]


def test_retries_and_conflicts_are_answered_and_flagged_alike(lanes: Lanes) -> None:
    def scenario(lane: Lane) -> list[Any]:
        original = lane.body(1)
        other_date = lane.body(1, vaccinated_on="2023-05-02")
        other_lot = lane.body(1, lot=MODERNA_LOT, product=SPIKEVAX)
        reused_id = lane.body(2, client_record_id=original["client_record_id"])
        posts = [
            original,
            original,  # a retry
            lane.body(1, source="ocr"),  # a rescan: a new client id, the same dose
            other_date,
            other_date,  # the conflicting post retried: no second flag
            other_date,
            other_lot,  # another disagreement: a second flag
            reused_id,
        ]
        return [seen(lane.post(p)) for p in posts]

    fast, portable = lanes.run(scenario)
    assert fast == portable
    assert [status_and_code(a) for a in fast] == [
        (201, None),
        (200, None),
        (200, None),
        (409, "CONFLICT"),
        (409, "CONFLICT"),
        (409, "CONFLICT"),
        (409, "CONFLICT"),
        (409, "CLIENT_ID_REUSED"),
    ]
    stored = lanes.assert_same_stored()
    record = stored[(coupon_number(1), 1)]
    assert [f[0] for f in record["flags"]] == ["CONFLICT", "CONFLICT"]
    assert Counter(record["events"]) == {"created": 1, "conflict": 2}
    assert record["content"][0] == date(2023, 5, 1)  # never overwritten


def test_a_locked_record_is_refused_alike(lanes: Lanes) -> None:
    def scenario(lane: Lane) -> list[Any]:
        answers = [seen(lane.post(lane.body(1)))]
        lane.lock(1, 1)
        changed = lane.body(1, lot="ZZ9999")
        answers += [seen(lane.post(changed)) for _ in range(2)]
        answers.append(seen(lane.post(lane.body(1))))
        return answers

    fast, portable = lanes.run(scenario)
    assert fast == portable
    assert [status_and_code(a) for a in fast] == [
        (201, None),
        (409, "RECORD_LOCKED"),
        (409, "RECORD_LOCKED"),
        (200, None),
    ]
    assert fast[1][1]["record"]["lot"] == GOOD_LOT
    assert fast[3][1]["locked"] is True
    record = lanes.assert_same_stored()[(coupon_number(1), 1)]
    assert [f[0] for f in record["flags"]] == ["RECORD_LOCKED"]
    assert record["events"] == ["conflict", "created"]


def test_a_pending_record_is_matched_alike_when_a_later_post_reevaluates_it(
    lanes: Lanes,
) -> None:
    def scenario(lane: Lane) -> list[Any]:
        answers = [seen(lane.post(lane.body(9, 1, vaccinated_on="2023-04-01")))]
        lane.add_resident(9, birth_date=date(2023, 1, 1))
        answers.append(seen(lane.post(lane.body(9, 2, vaccinated_on="2023-05-01"))))
        return [*answers, normal(lane.listing(9))]

    fast, portable = lanes.run(scenario)
    assert fast == portable
    pending, second, listed = fast
    assert pending[1]["status"] == "pending"
    assert second[1]["status"] == "recorded"
    assert [r["status"] for r in listed] == ["recorded", "recorded"]
    assert [r["resident_local_id"] for r in listed] == ["R000000009"] * 2
    # Matched, the first dose is judged with the resident's birth date: three months old.
    assert [{f["rule_code"] for f in r["flags"]} for r in listed] == [{"AGE_OUT_OF_RANGE"}] * 2
    stored = lanes.assert_same_stored()
    assert stored[(coupon_number(9), 1)]["events"] == ["created", "flagged", "matched"]


def test_a_mixed_batch_gets_the_same_answer_per_record(lanes: Lanes) -> None:
    def scenario(lane: Lane) -> list[Any]:
        lane.post(lane.body(3))
        lane.post(lane.body(4))
        lane.lock(4, 1)
        lane.post(lane.body(5, 2, vaccinated_on="2023-05-01"))  # a gap until dose 1 comes
        lane.add_resident(6)
        good = lane.body(1)
        conflicting = lane.body(3, lot=UNKNOWN_LOT)
        records = [
            good,
            {**lane.body(2), "coupon": "bad"},
            good,  # twice in one batch: stored once
            conflicting,
            conflicting,  # the same disagreement twice: one flag
            lane.body(3, vaccinated_on="2023-04-30"),  # another disagreement: another flag
            lane.body(4, lot=UNKNOWN_LOT),  # locked
            "not an object",
            lane.body(5, 1, vaccinated_on="2023-04-01"),  # closes dose 2's gap
            lane.body(6, 2, vaccinated_on="2023-05-02"),  # a resident's dose 2 with a gap
            lane.body(7, product="EU/1/99/0000"),
            lane.body(8, site="1310000025"),  # another site than the tablet's
            lane.body(10, client_record_id=good["client_record_id"]),
            lane.body(11, vaccinated_on="2023-06-02"),
        ]
        return [seen(lane.batch(records)), normal(lane.listing(5))]

    fast, portable = lanes.run(scenario)
    assert fast == portable
    (status, document), listed = fast
    assert status == 200
    results = document["results"]
    assert [(r["status"], r.get("error", {}).get("code")) for r in results] == [
        (201, None),
        (422, "MALFORMED_COUPON"),
        (200, None),
        (409, "CONFLICT"),
        (409, "CONFLICT"),
        (409, "CONFLICT"),
        (409, "RECORD_LOCKED"),
        (422, "INVALID_RECORD"),
        (201, None),
        (201, None),
        (422, "UNKNOWN_PRODUCT"),
        (403, "SITE_NOT_ENROLLED"),
        (409, "CLIENT_ID_REUSED"),
        (422, "DATE_IN_FUTURE"),
    ]
    assert {f["rule_code"] for f in results[9]["record"]["flags"]} == {"DOSE_NUMBER_GAP"}
    assert results[9]["record"]["status"] == "recorded"
    assert [r["flags"] for r in listed] == [[], []]
    stored = lanes.assert_same_stored()
    assert [f[0] for f in stored[(coupon_number(3), 1)]["flags"]] == ["CONFLICT", "CONFLICT"]
    assert [f[0] for f in stored[(coupon_number(4), 1)]["flags"]] == ["RECORD_LOCKED"]


# ---------------------------------------------------------------------------------------
# The difference found


def _first_conflict(lane: Lane) -> list[Any]:
    lane.post(lane.body(1))
    return [seen(lane.post(lane.body(1, vaccinated_on="2023-05-02")))]


def _first_lock_refusal(lane: Lane) -> list[Any]:
    lane.post(lane.body(1))
    lane.lock(1, 1)
    return [seen(lane.post(lane.body(1, lot="ZZ9999")))]


def _created_and_disputed_in_one_batch(lane: Lane) -> list[Any]:
    return [seen(lane.batch([lane.body(1), lane.body(1, lot=MODERNA_LOT)]))]


def _conflicts_in_a_batch(lane: Lane) -> list[Any]:
    lane.post(lane.body(1))
    first, second = lane.body(1, lot=UNKNOWN_LOT), lane.body(1, vaccinated_on="2023-04-30")
    return [seen(lane.batch([first, first, second]))]


FIRST_DISPUTES: dict[str, Callable[[Lane], list[Any]]] = {
    "CONFLICT": _first_conflict,
    "RECORD_LOCKED": _first_lock_refusal,
    "CONFLICT in a batch": _conflicts_in_a_batch,
    "201 and CONFLICT in one batch": _created_and_disputed_in_one_batch,
}


@pytest.mark.parametrize("case", sorted(FIRST_DISPUTES))
def test_an_answer_lists_the_conflict_flags_its_own_post_opened(lanes: Lanes, case: str) -> None:
    fast, portable = lanes.run(FIRST_DISPUTES[case])
    assert fast == portable
    lanes.assert_same_stored()


# ---------------------------------------------------------------------------------------
# Random sequences of posts

DATES = ["2022-12-01", "2023-01-10", "2023-02-01", "2023-04-20", "2023-05-01", "2023-05-10"]
PRODUCTS = [COMIRNATY, SPIKEVAX]
LOTS = [GOOD_LOT, MODERNA_LOT, EXPIRED_LOT, UNKNOWN_LOT]
BIRTH_DATES = [None, date(1980, 4, 15), date(2023, 1, 1)]

content = st.tuples(st.sampled_from(DATES), st.sampled_from(PRODUCTS), st.sampled_from(LOTS))
new_post = st.tuples(st.just("new"), st.integers(0, 2), st.integers(1, 4), content)
retry = st.tuples(st.just("retry"), st.integers(0, 99))
conflicting = st.tuples(st.just("conflict"), st.integers(0, 99), content)
steps = st.lists(st.one_of(new_post, new_post, retry, conflicting), min_size=1, max_size=12)


def _payloads(coupons: list[int], drawn: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The posts as a tablet would send them, in 千代田区; retries repeat an earlier post,
    conflicts repeat its dose with other content under a new client id."""
    posts: list[dict[str, Any]] = []
    for step in drawn:
        if step[0] == "new":
            _, coupon, dose, (day, product, lot) = step
            posts.append(body(coupons[coupon], dose, vaccinated_on=day, product=product, lot=lot))
        elif posts:
            earlier = posts[step[1] % len(posts)]
            if step[0] == "retry":
                posts.append(earlier)
            else:
                day, product, lot = step[2]
                changed = {"vaccinated_on": day, "product": product, "lot": lot}
                posts.append({**earlier, **changed, "client_record_id": str(uuid.uuid4())})
    return posts


def _in(municipality: str, payload: dict[str, Any]) -> dict[str, Any]:
    coupon = payload["coupon"]
    return {**payload, "coupon": coupon[:2] + municipality + coupon[8:]}


_serials = itertools.count(1000, 10)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    drawn=steps,
    births=st.lists(st.sampled_from(BIRTH_DATES), min_size=3, max_size=3),
    as_batch=st.booleans(),
)
def test_random_posts_give_the_same_statuses_and_flags_on_both_paths(
    lanes: Lanes, drawn: list[tuple[Any, ...]], births: list[date | None], as_batch: bool
) -> None:
    base = next(_serials)  # fresh coupons per example: the database is shared by all
    coupons = [base + i for i in range(3)]
    payloads = _payloads(coupons, drawn)

    def scenario(lane: Lane) -> list[Any]:
        for serial, birth in zip(coupons, births, strict=True):
            if birth is not None:
                lane.add_resident(serial, birth_date=birth)
        mine = [_in(lane.municipality, p) for p in payloads]
        if as_batch:
            results = seen(lane.batch(mine))[1]["results"]
            return [summary((r["status"], r.get("error") or r["record"])) for r in results]
        return [summary(seen(lane.post(p))) for p in mine]

    fast, portable = lanes.run(scenario)
    assert fast == portable
    numbers = {coupon_number(serial) for serial in coupons}
    fast_stored = {k: v for k, v in lanes.fast.stored().items() if k[0] in numbers}
    portable_stored = {k: v for k, v in lanes.portable.stored().items() if k[0] in numbers}
    assert flag_sets(fast_stored) == flag_sets(portable_stored)
    assert events(fast_stored) == events(portable_stored)


def flag_sets(stored: dict[tuple[str, int], dict[str, Any]]) -> dict[Any, list[Any]]:
    """Rule code, severity, message and resolution of every flag per record."""
    return {key: sorted(v["flags"]) for key, v in stored.items()}


def events(stored: dict[tuple[str, int], dict[str, Any]]) -> dict[Any, Any]:
    return {key: (v["status"], v["content"], v["events"]) for key, v in stored.items()}


def _dose(number: int, day: date) -> SeriesDose:
    return SeriesDose(
        id=uuid.uuid4(),
        coupon_number=coupon_number(1),
        dose_number=number,
        vaccinated_on=day,
        product_code=COMIRNATY,
        lot_number=GOOD_LOT,
        lot_known=True,
        lot_expires_on=date(2030, 1, 1),
        birth_date=None,
    )


def test_a_date_order_message_does_not_depend_on_the_order_rows_are_read() -> None:
    day = date(2022, 12, 1)
    first, second, third = _dose(1, day), _dose(2, day), _dose(3, day)
    read_one_way = dose_date_order(third, [first, second])
    read_the_other = dose_date_order(third, [second, first])
    assert read_one_way is not None and read_the_other is not None
    assert read_one_way.message == read_the_other.message


# ---------------------------------------------------------------------------------------
# Client ids taken by another series while the fast path's statements run


def _uncommitted_record(other: Any, municipality: str, serial: int, client_id: uuid.UUID) -> str:
    """Insert a record on ``other`` without committing; its transaction id."""
    other.execute(
        DoseRecord.__table__.insert(),  # type: ignore[attr-defined]
        {
            "municipality_code": municipality,
            "id": uuid.uuid4(),
            "coupon_number": coupon_number(serial),
            "dose_number": 1,
            "vaccinated_on": date(2023, 5, 1),
            "product_code": COMIRNATY,
            "lot_number": GOOD_LOT,
            "site_code": "1310000017",
            "source": "qr",
            "client_record_id": client_id,
            "status": "pending",
            "registered_at": NOW,
            "updated_at": NOW,
        },
    )
    return str(other.exec_driver_sql("SELECT pg_current_xact_id()::text").scalar_one())


def _wait_until_waited_on(watcher: Any, xid: str) -> None:
    """Until a session waits for transaction ``xid`` to end."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waiting = watcher.exec_driver_sql(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid' "
            "AND transactionid::text = %(xid)s",
            {"xid": xid},
        ).scalar_one()
        watcher.rollback()
        if waiting:
            return
        time.sleep(0.02)
    pytest.fail("the post never waited on the uncommitted record")


def test_client_ids_committed_during_the_insert_are_answered_client_id_reused(
    lanes: Lanes,
) -> None:
    """Two tablets of other series hold records with the client ids of a batch, not yet
    committed. The fast path's insert waits on the first; its commit makes the insert fail on
    the unique key, and the guarded statement runs instead; that one waits on the second,
    whose commit it does not see in its own snapshot, so the records are read again. Both
    records are answered CLIENT_ID_REUSED with the stored record, as the portable path
    answers them; none is answered RETRY, none stored twice."""
    lane = lanes.fast
    first, second = uuid.uuid4(), uuid.uuid4()
    assert lane.post(lane.body(3)).status_code == 201  # the app's caches are warm
    engine = lane.world.engine
    with engine.connect() as a, engine.connect() as b, engine.connect() as watcher:
        xid_a = _uncommitted_record(a, lane.municipality, 2, first)
        xid_b = _uncommitted_record(b, lane.municipality, 5, second)
        answers: list[httpx.Response] = []
        batch = [
            lane.body(1, client_record_id=str(first)),
            lane.body(4, client_record_id=str(second)),
        ]
        poster = threading.Thread(target=lambda: answers.append(lane.batch(batch)))
        poster.start()
        _wait_until_waited_on(watcher, xid_a)  # the fast statement, on the first record
        a.commit()
        _wait_until_waited_on(watcher, xid_b)  # the guarded statement, on the second
        b.commit()
        poster.join(30)
    [answer] = answers
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [409, 409]
    assert [r["error"]["code"] for r in results] == ["CLIENT_ID_REUSED"] * 2
    assert [r["error"]["record"]["coupon_number"] for r in results] == [
        coupon_number(2),
        coupon_number(5),
    ]
    stored = lane.stored()
    assert set(stored) == {(coupon_number(n), 1) for n in (2, 3, 5)}  # nothing new
