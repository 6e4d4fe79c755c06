"""The site outbox's throughput, beside the ceilings it is bound by.

    .venv/bin/python benchmarks/outbox.py --database-url postgresql://postgres@127.0.0.1:5432/bench_outbox

1. The disk: ``os.fsync`` of a small write, in a loop (what one durable commit costs).
2. SQLite alone: one-row ``INSERT`` + ``COMMIT`` in WAL mode with ``synchronous=FULL``.
3. ``Outbox.enqueue``: one record, validated and committed (durable when it returns).
4. The sender's bookkeeping without a network: claim 100, file 100 answers, one commit per
   answer versus ``Outbox.grouped()`` (one commit per batch).
5. Delivery end to end: ``Sender.send_due()`` to ``vrs`` served by uvicorn on loopback
   (**the database at --database-url is reset**), in batches of 100 and as single posts.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import reset_database, start_server
from scanner.checkdigits import damm_check_digit
from scanner.client import ApiClient
from scanner.outbox import Confirmation, Outbox, RecordDraft, RecordState
from scanner.sender import Backoff, Sender

SITE = "1310000017"
LOT = "FA1234"
COMIRNATY = "EU/1/20/1528"


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def timed(action: Callable[[], object], count: int) -> tuple[float, list[float]]:
    latencies = []
    start = time.perf_counter()
    for _ in range(count):
        t = time.perf_counter()
        action()
        latencies.append(time.perf_counter() - t)
    return time.perf_counter() - start, latencies


def ms(latencies: list[float], q: float) -> str:
    ordered = sorted(latencies)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.2f} ms"


def fsync_ceiling(folder: Path, count: int) -> tuple[float, list[float]]:
    path = folder / "fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:

        def one() -> None:
            os.write(fd, b"x" * 512)
            os.fsync(fd)

        return timed(one, count)
    finally:
        os.close(fd)


def sqlite_ceiling(folder: Path, count: int) -> tuple[float, list[float]]:
    db = sqlite3.connect(folder / "ceiling.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    body = "x" * 200  # about one outbox row

    def one() -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (body) VALUES (?)", (body,))
        db.execute("COMMIT")

    try:
        return timed(one, count)
    finally:
        db.close()


def draft(serial: int) -> RecordDraft:
    return RecordDraft(
        coupon=f"11131016{serial:09d}{damm_check_digit(f'{serial:09d}')}",
        vaccinated_on=date(2023, 5, 1),
        product=COMIRNATY,
        lot=LOT,
        site_code=SITE,
        source="qr",
        confirmation=Confirmation.CONFIRMED,
        device="bench tablet",
        lot_source="barcode",
    )


def bookkeeping(folder: Path, count: int, grouped: bool) -> float:
    box = Outbox(folder / f"book-{grouped}.sqlite3")
    for i in range(count):
        box.enqueue(draft(i))
    start = time.perf_counter()
    while batch := box.claim(100):
        if grouped:
            with box.grouped():
                for r in batch:
                    box.mark_sent(r.client_record_id, http_status=201, server_record_id="x",
                                  server_status="pending")  # fmt: skip
        else:
            for r in batch:
                box.mark_sent(r.client_record_id, http_status=201, server_record_id="x",
                              server_status="pending")  # fmt: skip
    elapsed = time.perf_counter() - start
    box.close()
    return elapsed


def prepare_service(url: str) -> str:
    """A fresh database with the site, its tablet credential and the lot; the token."""
    from sqlmodel import Session

    from vrs.db.models import VaccineLot
    from vrs.domain.auth import SYSTEM, Role, create_credential
    from vrs.domain.places import add_site

    now = datetime.now(UTC)
    engine = reset_database(url, now)
    with Session(engine) as s:
        add_site(s, actor=SYSTEM, code=SITE, name="bench site", now=now)
        s.add(VaccineLot(lot_number=LOT, product_code=COMIRNATY, expires_on=date(2030, 1, 1)))
        token = create_credential(
            s, actor=SYSTEM, role=Role.SITE, name="bench", site_code=SITE, now=now
        ).token
        s.commit()
    engine.dispose()
    return token


def deliver(box: Outbox, url: str, token: str, first: int, count: int, batch: int) -> float:
    for i in range(first, first + count):
        box.enqueue(draft(i))
    with ApiClient(url, token) as client:
        sender = Sender(box, client, batch_size=batch, backoff=Backoff(0.05, 0.5))
        sender.acquire()
        start = time.perf_counter()
        while box.counts()[RecordState.SENT] < first + count:
            report = sender.send_due()
            if report.rejected or report.conflict:
                raise SystemExit(f"unexpected refusals: {report}")
        elapsed = time.perf_counter() - start
        sender.release()
    return elapsed


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--database-url", help="a database to RESET for the delivery part")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--dir", default=None, help="where the outbox files go (default: tmp)")
    parser.add_argument("--port", type=int, default=8102)
    args = parser.parse_args()
    print("load before:", load())
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        n = args.records
        rows = [("| what | count | rate | p50 | p99 |", "|---|---|---|---|---|")]
        seconds, lat = fsync_ceiling(folder, n)
        rows.append((f"| fsync of 512 bytes (ceiling) | {n} | {per_second(n, seconds)} | "
                     f"{ms(lat, .5)} | {ms(lat, .99)} |",))  # fmt: skip
        seconds, lat = sqlite_ceiling(folder, n)
        rows.append((f"| SQLite INSERT+COMMIT, WAL, FULL (ceiling) | {n} | "
                     f"{per_second(n, seconds)} | {ms(lat, .5)} | {ms(lat, .99)} |",))  # fmt: skip
        box = Outbox(folder / "outbox.sqlite3")
        counter = iter(range(10**9))
        seconds, lat = timed(lambda: box.enqueue(draft(next(counter))), n)
        rows.append((f"| Outbox.enqueue | {n} | {per_second(n, seconds)} | {ms(lat, .5)} | "
                     f"{ms(lat, .99)} |",))  # fmt: skip
        box.close()
        for grouped in (False, True):
            seconds = bookkeeping(folder, n, grouped)
            label = "one commit per batch" if grouped else "one commit per answer"
            rows.append((f"| claim 100 + file answers, {label} | {n} | "
                         f"{per_second(n, seconds)} | | |",))  # fmt: skip
        if args.database_url:
            token = prepare_service(args.database_url)
            server = start_server(args.database_url, args.port)
            try:
                box = Outbox(folder / "deliver.sqlite3")
                url = f"http://127.0.0.1:{args.port}"
                for first, batch in ((0, 100), (n, 1)):
                    seconds = deliver(box, url, token, first, n, batch)
                    kind = f"batches of {batch}" if batch > 1 else "single posts, one at a time"
                    rows.append((f"| delivered to vrs, {kind} | {n} | "
                                 f"{per_second(n, seconds)} | | |",))  # fmt: skip
                box.close()
            finally:
                server.terminate()
                server.wait(timeout=30)
        for row in rows:
            print("\n".join(row))
    print("load after:", load())
    print("python", sys.version.split()[0], "sqlite", sqlite3.sqlite_version)


if __name__ == "__main__":
    main()
