"""Delivery under faults, against the real service: ``vrs serve`` in a child process on
loopback, on SQLite and (with ``VRS_TEST_DATABASE_URL``) PostgreSQL, behind a real HTTP proxy
that fails on purpose. After every recovery each record is stored exactly once (checked in
the database) and the outbox says it was sent.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest
from sqlalchemy import text

from scanner.client import ApiClient
from scanner.outbox import DeliveryError, Outbox, RecordState
from scanner.sender import Backoff, Sender
from tests.conftest import World
from tests.scanner.live import (
    DEADLINE,
    Fault,
    FaultProxy,
    ServeProcess,
    all_sent,
    assert_stored_exactly_once,
    fill,
    free_port,
    stored_client_ids,
    wait_until,
)
from tests.vrs.dose_support import add_lots

pytestmark = pytest.mark.slow

SCAN = [sys.executable, "-m", "scanner"]
SEND_LOOP = ["send", "--loop", "--batch-size", "10"]


@pytest.fixture
def site(world: World) -> World:
    add_lots(world)
    return world


def database_url(world: World) -> str:
    return world.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def service(site: World, tmp_path: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(database_url(site), tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "site" / "outbox.sqlite3")
    yield box
    box.close()


class SenderFactory(Protocol):
    def __call__(
        self, outbox: Outbox, url: str, token: str, *, batch_size: int = 20, read_timeout: float = 3
    ) -> Sender: ...


@pytest.fixture
def make_sender() -> Iterator[SenderFactory]:
    """Senders with a fast backoff (50 ms doubling to 0.5 s); their clients closed after."""
    clients: list[ApiClient] = []

    def make(
        outbox: Outbox, url: str, token: str, *, batch_size: int = 20, read_timeout: float = 30.0
    ) -> Sender:
        client = ApiClient(url, token, timeout=httpx.Timeout(read_timeout, connect=2.0))
        clients.append(client)
        backoff = Backoff(base=0.05, cap=0.5)
        return Sender(outbox, client, batch_size=batch_size, backoff=backoff, idle_poll=0.2)

    yield make
    for client in clients:
        client.close()


def retried(outbox: Outbox, count: int) -> bool:
    """At least ``count`` records went back to pending after a failed attempt."""
    return (
        sum(
            1
            for r in outbox.records([RecordState.PENDING])
            if r.attempts >= 1 and r.last_error is not None
        )
        >= count
    )


def test_server_down_at_start_then_up(
    site: World, outbox: Outbox, tmp_path: Path, make_sender: SenderFactory
) -> None:
    client_ids = fill(outbox, 30)
    server = ServeProcess(database_url(site), tmp_path, port=free_port())
    sender = make_sender(outbox, server.url, site.tokens["site"])
    sender.start()
    try:
        wait_until(lambda: retried(outbox, 20), "the sender to fail against a closed port")
        assert stored_client_ids(site) == []
        failed = outbox.records([RecordState.PENDING])[0]
        assert failed.error_code == "NETWORK"
        assert "ConnectError" in (failed.last_error or "")
        server.start()
        wait_until(all_sent(outbox, 30), "every record to be delivered")
    finally:
        assert sender.stop()
        server.stop()
    assert_stored_exactly_once(site, outbox, client_ids)
    assert all(r.http_status == 201 for r in outbox.records())


def block_writes(world: World, backend: str, db_path: Path | None) -> object:
    """Hold the database's write lock from outside the service; return what releases it."""
    if backend == "sqlite":
        assert db_path is not None
        lite = sqlite3.connect(db_path, isolation_level=None)
        lite.execute("BEGIN IMMEDIATE")
        return lite
    conn = world.engine.connect()
    trans = conn.begin()
    conn.execute(text("LOCK TABLE dose_record IN EXCLUSIVE MODE"))
    return (conn, trans)


def unblock_writes(handle: object) -> None:
    if isinstance(handle, sqlite3.Connection):
        handle.execute("ROLLBACK")
        handle.close()
        return
    conn, trans = handle  # type: ignore[misc]
    trans.rollback()
    conn.close()


def test_server_killed_mid_batch(
    site: World,
    service: ServeProcess,
    outbox: Outbox,
    backend: str,
    tmp_path: Path,
    make_sender: SenderFactory,
) -> None:
    client_ids = fill(outbox, 60)
    with FaultProxy(service.port) as proxy:
        # The first batch goes through; the second is held until the database is blocked.
        proxy.script(Fault.PASS, Fault.HOLD)
        sender = make_sender(outbox, proxy.url, site.tokens["site"], batch_size=20)
        sender.start()
        try:
            wait_until(lambda: proxy.held.is_set(), "the second batch to reach the proxy")
            assert outbox.counts()[RecordState.SENT] == 20
            lock = block_writes(site, backend, tmp_path / "vrs.db")
            proxy.forwarded.clear()
            proxy.release()
            wait_until(proxy.forwarded.is_set, "the batch to reach the service")
            if backend == "postgresql":
                wait_until(lambda: waiting_on_lock(site), "the service to block on the lock")
            service.kill()  # mid-batch: the batch is at the service, not committed
            unblock_writes(lock)
            assert len(stored_client_ids(site)) == 20
            wait_until(lambda: retried(outbox, 20), "the sender to see the service gone")
            service.start()
            wait_until(all_sent(outbox, 60), "every record to be delivered")
        finally:
            assert sender.stop()
    assert_stored_exactly_once(site, outbox, client_ids)


def waiting_on_lock(world: World) -> bool:
    with world.engine.connect() as conn:
        waiting = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        ).scalar_one()
    return int(waiting) > 0


def test_slow_service_times_out_then_delivers_once(
    site: World, service: ServeProcess, outbox: Outbox, make_sender: SenderFactory
) -> None:
    client_ids = fill(outbox, 25)
    with FaultProxy(service.port) as proxy:
        # The service commits each of these; the answer comes after the tablet gave up.
        proxy.delay = 3.0
        proxy.script(Fault.SLOW, Fault.SLOW)
        sender = make_sender(outbox, proxy.url, site.tokens["site"], read_timeout=1.0)
        sender.start()
        try:
            wait_until(all_sent(outbox, 25), "every record to be delivered")
        finally:
            assert sender.stop()
    assert proxy.faults_seen()[:2] == [Fault.SLOW, Fault.SLOW]
    assert_stored_exactly_once(site, outbox, client_ids)
    assert_retries_found_the_records_stored(outbox)


def assert_retries_found_the_records_stored(outbox: Outbox) -> None:
    """Every failed attempt here reached the service, which committed: the retries were
    answered "already stored" (200), never stored a second time."""
    records = outbox.records()
    assert any(r.attempts > 1 for r in records)
    assert all(r.http_status == (200 if r.attempts > 1 else 201) for r in records)


def test_slow_but_within_the_timeout_is_no_failure(
    site: World, service: ServeProcess, outbox: Outbox, make_sender: SenderFactory
) -> None:
    client_ids = fill(outbox, 5)
    with FaultProxy(service.port) as proxy:
        proxy.delay = 0.5
        proxy.default = Fault.SLOW
        sender = make_sender(outbox, proxy.url, site.tokens["site"], read_timeout=30.0)
        report = sender.send_due()
    assert report.sent == 5
    assert_stored_exactly_once(site, outbox, client_ids)
    assert all(r.attempts == 1 and r.http_status == 201 for r in outbox.records())


def test_500_answers_are_retried_until_stored_once(
    site: World, service: ServeProcess, outbox: Outbox, make_sender: SenderFactory
) -> None:
    client_ids = fill(outbox, 30)
    with FaultProxy(service.port) as proxy:
        # Two plain 500s, then a gateway 500 after the service had committed the batch.
        proxy.script(Fault.FAIL_500, Fault.FAIL_500, Fault.FORWARD_THEN_500)
        sender = make_sender(outbox, proxy.url, site.tokens["site"])
        sender.start()
        try:
            wait_until(all_sent(outbox, 30), "every record to be delivered")
        finally:
            assert sender.stop()
    assert proxy.faults_seen()[:3] == [Fault.FAIL_500, Fault.FAIL_500, Fault.FORWARD_THEN_500]
    assert_stored_exactly_once(site, outbox, client_ids)
    statuses = {r.http_status for r in outbox.records()}
    # 200 for the records whose batch the service committed before the gateway's 500.
    assert statuses == {200, 201}


@pytest.mark.parametrize("count", [1, 12], ids=["single", "batch"])
def test_connection_reset_after_the_service_committed(
    site: World, service: ServeProcess, outbox: Outbox, count: int, make_sender: SenderFactory
) -> None:
    client_ids = fill(outbox, count)
    with FaultProxy(service.port) as proxy:
        proxy.script(Fault.FORWARD_THEN_RESET, Fault.RESET)
        sender = make_sender(outbox, proxy.url, site.tokens["site"])
        first = sender.send_due()
        assert first.retried == count and first.sent == 0
        assert "NETWORK" in first.errors[0]
        assert sorted(c for c, _ in stored_client_ids(site)) == sorted(client_ids)
        wait_until(lambda: deliver(sender) and all_sent(outbox, count)(), "delivery")
    assert proxy.faults_seen()[:2] == [Fault.FORWARD_THEN_RESET, Fault.RESET]
    assert_stored_exactly_once(site, outbox, client_ids)
    # Stored by the first attempt; every later one was answered "already stored".
    assert all(r.http_status == 200 and r.attempts >= 2 for r in outbox.records())


def deliver(sender: Sender) -> bool:
    sender.send_due()
    return True


def scanner_process(outbox_path: Path, url: str, token: str) -> subprocess.Popen[bytes]:
    """``vrs-scan send --loop`` as a child process (the site's background sender)."""
    env = {**os.environ, "VRS_SCAN_TOKEN": token}
    with (outbox_path.parent / "child.log").open("ab") as log:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*SCAN, "--outbox", str(outbox_path), "--api", url, *SEND_LOOP],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize(
    "fault", [Fault.HOLD_THEN_DROP, Fault.FORWARD_THEN_HOLD], ids=["before-commit", "after-commit"]
)
def test_scanner_killed_while_sending(
    site: World, service: ServeProcess, outbox: Outbox, fault: Fault, make_sender: SenderFactory
) -> None:
    client_ids = fill(outbox, 25)
    with FaultProxy(service.port) as proxy:
        proxy.script(fault)
        child = scanner_process(outbox.path, proxy.url, site.tokens["site"])
        try:
            wait_until(proxy.held.is_set, "the child's first batch to be in flight")
            in_flight = outbox.records([RecordState.SENDING])
            assert len(in_flight) == 10
            other = make_sender(outbox, proxy.url, site.tokens["site"])
            with pytest.raises(DeliveryError) as busy:
                other.acquire()
            assert busy.value.code == "SENDER_BUSY"
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=DEADLINE)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            proxy.release()
        stored_while_dead = len(stored_client_ids(site))
        assert stored_while_dead == (10 if fault is Fault.FORWARD_THEN_HOLD else 0)
        assert outbox.counts()[RecordState.SENDING] == 10  # as the dead process left them
        with sqlite3.connect(outbox.path) as check:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

        sender = make_sender(outbox, proxy.url, site.tokens["site"])
        assert sender.acquire() == 10
        try:
            wait_until(lambda: deliver(sender) and all_sent(outbox, 25)(), "delivery")
        finally:
            sender.release()
    assert_stored_exactly_once(site, outbox, client_ids)
    resent = [outbox.get(r.client_record_id) for r in in_flight]
    expected = 200 if fault is Fault.FORWARD_THEN_HOLD else 201
    assert all(r is not None and r.http_status == expected for r in resent)


def test_every_fault_at_random_still_stores_each_record_once(
    site: World, service: ServeProcess, outbox: Outbox, make_sender: SenderFactory
) -> None:
    """A seeded mix of every fault above on most requests, over odd-sized batches."""
    client_ids = fill(outbox, 60)
    with FaultProxy(service.port) as proxy:
        proxy.delay = 2.0
        proxy.randomly(
            seed=2021,
            weights={
                Fault.PASS: 4,
                Fault.FAIL_500: 2,
                Fault.FORWARD_THEN_500: 2,
                Fault.RESET: 2,
                Fault.FORWARD_THEN_RESET: 2,
                Fault.SLOW: 1,
            },
        )
        sender = make_sender(outbox, proxy.url, site.tokens["site"], batch_size=7, read_timeout=1)
        sender.start()
        try:
            wait_until(all_sent(outbox, 60), "every record to be delivered", timeout=180)
        finally:
            assert sender.stop()
    seen = set(proxy.faults_seen())
    assert {Fault.FORWARD_THEN_500, Fault.FORWARD_THEN_RESET, Fault.PASS} <= seen
    assert_stored_exactly_once(site, outbox, client_ids)
