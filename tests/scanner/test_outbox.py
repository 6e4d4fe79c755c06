"""The outbox file on its own: durability settings, states, validation, recovery."""

from __future__ import annotations

import sqlite3
import stat
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from scanner.outbox import (
    Confirmation,
    InvalidRecord,
    Outbox,
    OutboxError,
    RecordState,
    default_outbox_path,
)
from tests.scanner.live import drafts


class FakeClock:
    """Time as a number the test moves."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def box(tmp_path: Path, clock: FakeClock) -> Iterator[Outbox]:
    outbox = Outbox(tmp_path / "data" / "outbox.sqlite3", clock=clock)
    yield outbox
    outbox.close()


def test_the_file_is_wal_with_full_sync_and_private(box: Outbox) -> None:
    with box._lock:
        assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    box.enqueue(drafts(1)[0])
    for suffix in ("", "-wal", "-shm"):
        path = box.path.with_name(box.path.name + suffix)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_enqueue_stores_a_pending_record_with_a_fresh_client_id(box: Outbox) -> None:
    draft = drafts(1)[0]
    record = box.enqueue(draft)
    assert uuid.UUID(record.client_record_id).version == 4
    assert record.state is RecordState.PENDING
    assert record.attempts == 0
    assert record.confirmation is Confirmation.CONFIRMED
    assert record.body() == {
        "client_record_id": record.client_record_id,
        "coupon": draft.coupon,
        "vaccinated_on": "2023-05-01",
        "product": draft.product,
        "lot": draft.lot,
        "site_code": draft.site_code,
        "source": "qr",
    }
    # A second process sees it at once: it is committed.
    with sqlite3.connect(box.path) as other:
        assert other.execute("SELECT count(*) FROM outbox_record").fetchone()[0] == 1


def test_enqueue_again_with_the_same_client_id_keeps_one_record(box: Outbox) -> None:
    draft = replace(drafts(1)[0], client_record_id=str(uuid.uuid4()))
    first = box.enqueue(draft)
    again = box.enqueue(replace(draft, lot="OTHER1"))
    assert again == first
    assert box.counts()[RecordState.PENDING] == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"coupon": "12345"}, "MALFORMED_COUPON"),
        ({"coupon": "１１１３１０１６１２３４５６７８９４"}, "MALFORMED_COUPON"),
        ({"site_code": "131000001"}, "BAD_SITE_CODE"),
        ({"source": "csv"}, "BAD_SOURCE"),
        ({"lot_source": "guess"}, "BAD_LOT_SOURCE"),
        ({"lot": ""}, "BAD_LOT"),
        ({"lot": "A" * 41}, "BAD_LOT"),
        ({"lot": "FA\x001234"}, "BAD_LOT"),
        ({"product": " "}, "UNKNOWN_PRODUCT"),
        ({"doctor_name": "x" * 101}, "INVALID_RECORD"),
        ({"client_record_id": "not-a-uuid"}, "INVALID_RECORD"),
        ({"vaccinated_on": "2023-05-01"}, "BAD_DATE"),
    ],
)
def test_a_draft_the_service_would_refuse_never_enters(
    box: Outbox, change: dict[str, object], code: str
) -> None:
    with pytest.raises(InvalidRecord) as refused:
        box.enqueue(replace(drafts(1)[0], **change))  # type: ignore[arg-type]
    assert refused.value.code == code
    assert box.records() == []


def test_claim_takes_due_records_oldest_first_and_counts_the_attempt(
    box: Outbox, clock: FakeClock
) -> None:
    ids = [box.enqueue(d).client_record_id for d in drafts(5)]
    claimed = box.claim(3)
    assert [r.client_record_id for r in claimed] == ids[:3]
    assert all(r.state is RecordState.SENDING and r.attempts == 1 for r in claimed)
    box.mark_retry(ids[0], error="NETWORK: refused", delay=10, code="NETWORK")
    assert [r.client_record_id for r in box.claim(10)] == ids[3:]  # ids[0] is not due yet
    clock.now += 10
    again = box.claim(10)
    assert [(r.client_record_id, r.attempts) for r in again] == [(ids[0], 2)]


def test_outcomes_are_kept_with_codes(box: Outbox) -> None:
    a, b, c = (box.enqueue(d).client_record_id for d in drafts(3))
    box.claim(3)
    box.mark_sent(
        a, http_status=201, server_record_id="r-1", server_status="pending", flags=["LOT_UNKNOWN"]
    )
    box.mark_refused(b, state=RecordState.REJECTED, http_status=422, code="BAD_LOT", detail="x")
    box.mark_refused(
        c,
        state=RecordState.CONFLICT,
        http_status=409,
        code="CONFLICT",
        detail="y",
        server_record_id="r-9",
    )
    sent, rejected, conflict = (box.get(cid) for cid in (a, b, c))
    assert sent is not None and sent.state is RecordState.SENT
    assert (sent.server_record_id, sent.server_status, sent.flags) == (
        "r-1",
        "pending",
        ("LOT_UNKNOWN",),
    )
    assert sent.sent_at is not None
    assert rejected is not None and (rejected.state, rejected.error_code) == (
        RecordState.REJECTED,
        "BAD_LOT",
    )
    assert conflict is not None and (conflict.state, conflict.server_record_id) == (
        RecordState.CONFLICT,
        "r-9",
    )
    assert box.counts() == {
        RecordState.PENDING: 0,
        RecordState.SENDING: 0,
        RecordState.SENT: 1,
        RecordState.REJECTED: 1,
        RecordState.CONFLICT: 1,
    }


def test_an_answer_for_a_record_no_longer_in_flight_changes_nothing(box: Outbox) -> None:
    cid = box.enqueue(drafts(1)[0]).client_record_id
    box.claim(1)
    box.mark_sent(cid, http_status=201, server_record_id="r-1", server_status="recorded")
    box.mark_retry(cid, error="late timeout", delay=0)  # a stale answer
    record = box.get(cid)
    assert record is not None and record.state is RecordState.SENT


def test_records_left_sending_by_a_dead_process_are_recovered(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "outbox.sqlite3"
    first = Outbox(path, clock=clock)
    ids = [first.enqueue(d).client_record_id for d in drafts(3)]
    first.claim(2)
    first.close()  # the process is gone; two records were in flight
    second = Outbox(path, clock=clock)
    assert second.recover_sending() == 2
    recovered = second.records([RecordState.PENDING])
    assert [r.client_record_id for r in recovered] == ids
    assert [r.attempts for r in recovered] == [1, 1, 0]
    assert recovered[0].last_error == "interrupted while sending (the sender stopped)"
    # Same client ids: the service answers "already stored" for any it had received.
    assert [r.client_record_id for r in second.claim(3)] == ids
    second.close()


def test_requeue_is_only_for_refused_records(box: Outbox) -> None:
    a, b = (box.enqueue(d).client_record_id for d in drafts(2))
    box.claim(2)
    box.mark_refused(
        a, state=RecordState.REJECTED, http_status=422, code="UNKNOWN_MUNICIPALITY", detail="x"
    )
    assert box.requeue(a).state is RecordState.PENDING
    with pytest.raises(OutboxError) as busy:
        box.requeue(b)
    assert busy.value.code == "NOT_REQUEUEABLE"
    with pytest.raises(OutboxError) as unknown:
        box.requeue(str(uuid.uuid4()))
    assert unknown.value.code == "UNKNOWN_RECORD"


def test_a_newer_schema_or_a_foreign_file_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(OutboxError) as too_new:
        Outbox(newer)
    assert too_new.value.code == "OUTBOX_TOO_NEW"
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxError) as unreadable:
        Outbox(garbage)
    assert unreadable.value.code == "OUTBOX_UNREADABLE"


def test_the_default_location_follows_the_environment(tmp_path: Path) -> None:
    assert default_outbox_path({"VRS_SCAN_OUTBOX": str(tmp_path / "x.db")}) == tmp_path / "x.db"
    linux = default_outbox_path({"HOME": "/home/nurse", "XDG_DATA_HOME": "/data"})
    assert linux.parts[-2:] == ("vrs-scan", "outbox.sqlite3")


def test_the_date_is_sent_as_given(box: Outbox) -> None:
    record = box.enqueue(replace(drafts(1)[0], vaccinated_on=date(2021, 2, 17)))
    assert record.body()["vaccinated_on"] == "2021-02-17"


def test_grouped_changes_commit_together_or_not_at_all(box: Outbox) -> None:
    a, b = (box.enqueue(d).client_record_id for d in drafts(2))
    box.claim(2)
    with pytest.raises(RuntimeError), box.grouped():
        box.mark_sent(a, http_status=201, server_record_id="r-1", server_status="recorded")
        raise RuntimeError("the process fails half way through a batch answer")
    assert box.counts()[RecordState.SENDING] == 2  # nothing of the group was kept
    with box.grouped():
        box.mark_sent(a, http_status=201, server_record_id="r-1", server_status="recorded")
        box.mark_sent(b, http_status=201, server_record_id="r-2", server_status="recorded")
        with sqlite3.connect(box.path) as other:  # not visible before the group commits
            assert (
                other.execute("SELECT count(*) FROM outbox_record WHERE state = 'sent'").fetchone()[
                    0
                ]
                == 0
            )
    assert box.counts()[RecordState.SENT] == 2


def test_expedite_makes_waiting_records_due_now(box: Outbox, clock: FakeClock) -> None:
    ids = [box.enqueue(d).client_record_id for d in drafts(2)]
    box.claim(2)
    for cid in ids:
        box.mark_retry(cid, error="NETWORK: down", delay=300)
    assert box.claim(2) == []
    assert box.expedite() == 2
    assert [r.client_record_id for r in box.claim(2)] == ids
