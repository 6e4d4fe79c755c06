"""The sender against the real service (uvicorn on loopback, the test's app and database):
what each kind of answer does to a record, and the masked preview."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI

from scanner.client import ApiClient, PreviewOutcome
from scanner.outbox import Outbox, RecordState
from scanner.sender import LAST_CONTACT_NOTE, SENDER_NOTE, Backoff, Sender
from tests.conftest import World
from tests.scanner.live import ThreadServer, drafts, fill, free_port, wait_until
from tests.vrs.dose_support import add_lots, add_resident, line
from vrs.domain.reference import SPIKEVAX


@pytest.fixture
def server(app: FastAPI, world: World) -> Iterator[ThreadServer]:
    add_lots(world)
    with ThreadServer(app) as running:
        yield running


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite3")
    yield box
    box.close()


@pytest.fixture
def clients() -> Iterator[list[ApiClient]]:
    made: list[ApiClient] = []
    yield made
    for client in made:
        client.close()


def sender_for(
    outbox: Outbox, url: str, token: str, clients: list[ApiClient], batch_size: int = 50
) -> Sender:
    client = ApiClient(url, token)
    clients.append(client)
    return Sender(outbox, client, batch_size=batch_size, backoff=Backoff(0.05, 0.5), idle_poll=0.2)


def refused_set(outbox: Outbox) -> list[tuple[str, str | None, int | None]]:
    return [(r.state.value, r.error_code, r.http_status) for r in outbox.records()]


@pytest.mark.parametrize("batch_size", [1, 50], ids=["single-posts", "batch"])
def test_each_answer_files_the_record_and_refusals_are_not_retried(
    server: ThreadServer,
    world: World,
    outbox: Outbox,
    clients: list[ApiClient],
    batch_size: int,
) -> None:
    good, unknown_product, other_site, unregistered, conflicting, flagged = drafts(6)
    sender = sender_for(outbox, server.url, world.tokens["site"], clients, batch_size)
    # The dose of `conflicting` is already stored with another date.
    first = outbox.enqueue(replace(conflicting, vaccinated_on=date(2023, 4, 30)))
    assert sender.send_due().sent == 1
    for draft in (
        good,
        replace(unknown_product, product="EU/9/99/9999"),
        replace(other_site, site_code=world.other_site),
        replace(unregistered, coupon=line(7, municipality="271004")),  # 大阪市, not registered
        conflicting,
        replace(flagged, lot="ZZ9999", product=SPIKEVAX),
    ):
        outbox.enqueue(draft)
    report = sender.send_due()
    assert (report.sent, report.rejected, report.conflict, report.retried) == (2, 3, 1, 0)
    assert refused_set(outbox) == [
        ("sent", None, 201),
        ("sent", None, 201),
        ("rejected", "UNKNOWN_PRODUCT", 422),
        ("rejected", "SITE_NOT_ENROLLED", 403),
        ("rejected", "UNKNOWN_MUNICIPALITY", 422),
        ("conflict", "CONFLICT", 409),
        ("sent", None, 201),
    ]
    records = outbox.records()
    assert records[5].server_record_id == outbox.get(first.client_record_id).server_record_id  # type: ignore[union-attr]
    assert records[6].flags == ("LOT_UNKNOWN",)
    assert records[6].server_status == "pending"
    # Refusals are for staff: another pass does not send them again.
    assert sender.send_due().sent == 0
    assert [r.attempts for r in outbox.records()] == [1] * 7


def test_a_refused_credential_holds_every_record_until_fixed(
    server: ThreadServer, world: World, outbox: Outbox, clients: list[ApiClient]
) -> None:
    ids = fill(outbox, 3)
    bad = sender_for(outbox, server.url, "vrs_not-a-real-token", clients)
    report = bad.send_due()
    assert (report.held, report.rejected) == (3, 0)
    assert all(r.state is RecordState.PENDING for r in outbox.records())
    assert (outbox.note(SENDER_NOTE) or "").startswith("BAD_TOKEN")
    bad.release()
    good = sender_for(outbox, server.url, world.tokens["site"], clients)
    good.acquire()
    wait_until(lambda: good.send_due() is not None and outbox.counts()[RecordState.SENT] == 3, "")
    good.release()
    assert [outbox.get(i).state for i in ids] == [RecordState.SENT] * 3  # type: ignore[union-attr]
    assert outbox.note(SENDER_NOTE) is None
    assert outbox.note(LAST_CONTACT_NOTE)


def test_a_wrong_api_path_holds_rather_than_rejects(
    server: ThreadServer, world: World, outbox: Outbox, clients: list[ApiClient]
) -> None:
    fill(outbox, 2)
    sender = sender_for(outbox, server.url + "/not-vrs", world.tokens["site"], clients)
    report = sender.send_due()
    assert report.held == 2
    assert outbox.counts()[RecordState.PENDING] == 2


def test_the_background_thread_delivers_what_is_enqueued_and_stops_cleanly(
    server: ThreadServer, world: World, outbox: Outbox, clients: list[ApiClient]
) -> None:
    sender = sender_for(outbox, server.url, world.tokens["site"], clients)
    sender.start()
    try:
        for draft in drafts(4):
            outbox.enqueue(draft)
            sender.wake()
        wait_until(lambda: outbox.counts()[RecordState.SENT] == 4, "the thread to deliver")
    finally:
        assert sender.stop()
    # The lock went with it: another sender may take the outbox now.
    other = sender_for(outbox, server.url, world.tokens["site"], clients)
    assert other.acquire() == 0
    other.release()


def test_the_masked_preview(server: ThreadServer, world: World, clients: list[ApiClient]) -> None:
    add_resident(world, 1)
    add_resident(world, 2, protected=True)
    client = ApiClient(server.url, world.tokens["site"])
    clients.append(client)
    shown = client.preview(line(1, dose=2))
    assert shown.outcome is PreviewOutcome.SHOWN
    assert shown.preview is not None
    assert (shown.preview.kana_initials, shown.preview.birth_year_month) == ("ヤ・タ", "1980-04")
    assert shown.preview.coupon_dose_number == 2
    assert client.preview(line(2)).outcome is PreviewOutcome.UNAVAILABLE  # protected
    assert client.preview(line(3)).outcome is PreviewOutcome.UNAVAILABLE  # nobody holds it
    bad_digit = line(1)[:-1] + str((int(line(1)[-1]) + 1) % 10)
    refused = client.preview(bad_digit)
    assert (refused.outcome, refused.code) == (PreviewOutcome.REFUSED, "BAD_COUPON_CHECK_DIGIT")
    offline = ApiClient(f"http://127.0.0.1:{free_port()}", world.tokens["site"])
    clients.append(offline)
    result = offline.preview(line(1))
    assert (result.outcome, result.code) == (PreviewOutcome.OFFLINE, "OFFLINE")


def test_plain_http_to_another_host_is_refused() -> None:
    from scanner.outbox import DeliveryError

    with pytest.raises(DeliveryError) as insecure:
        ApiClient("http://vrs.example.jp", "vrs_x")
    assert insecure.value.code == "INSECURE_API_URL"
    with pytest.raises(DeliveryError) as bad:
        ApiClient("ftp://vrs.example.jp", "vrs_x")
    assert bad.value.code == "BAD_API_URL"
    client = ApiClient("https://vrs.example.jp/v1/", "vrs_x")
    assert client.base_url == "https://vrs.example.jp"
    client.close()
