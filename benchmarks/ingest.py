"""Dose-record ingest throughput: single posts at a given concurrency, then batches.

Sets up the database it is given (its VRS tables are dropped and recreated), starts
``uvicorn --factory vrs.app:app_from_env`` against it, and drives it with httpx/asyncio.
Reports records per second and p50/p99 latency per phase. See benchmarks/README.md.

    .venv/bin/python benchmarks/ingest.py --database-url postgresql://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
from _harness import MUNICIPALITY, p50_p99_ms, reset_database, start_server
from sqlalchemy import insert, text
from sqlmodel import Session

from vrs.db.models import Resident, VaccineLot
from vrs.domain.auth import SYSTEM, Role, create_credential
from vrs.domain.checkdigits import make_damm_coupon_number
from vrs.domain.places import add_site
from vrs.domain.reference import COMIRNATY

SITE = "1310000017"
LOT = "FA1234"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="PostgreSQL URL; its tables are reset")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--residents", type=int, default=50_000, help="residents to register")
    p.add_argument("--singles", type=int, default=20_000, help="records sent as single posts")
    p.add_argument("--concurrency", type=int, default=64, help="single posts in flight")
    p.add_argument("--batches", type=int, default=60, help="batch posts")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--batch-concurrency", type=int, default=4, help="batch posts in flight")
    p.add_argument(
        "--driver",
        choices=("httpx", "wrk"),
        default="httpx",
        help="load generator: httpx/asyncio (default) or wrk (Debian package wrk; lighter, "
        "so more of the machine is left to the server)",
    )
    p.add_argument("--seconds", type=int, default=20, help="wrk: length of each phase")
    return p.parse_args(argv)


def set_up_database(url: str, residents: int) -> str:
    """Fresh tables, reference data, one municipality, site and tablet; the tablet's token."""
    now = datetime.now(UTC)
    engine = reset_database(url, now)
    with Session(engine) as s:
        add_site(s, actor=SYSTEM, code=SITE, name="benchmark site", now=now)
        s.flush()
        s.add(VaccineLot(lot_number=LOT, product_code=COMIRNATY, expires_on=date(2030, 1, 1)))
        token = create_credential(
            s, actor=SYSTEM, role=Role.SITE, name="tablet", site_code=SITE, now=now
        ).token
        s.commit()
    rows = [
        {
            "municipality_code": MUNICIPALITY,
            "local_id": f"B{n:09d}",
            "family_name": "山田",
            "given_name": "太郎",
            "family_name_kana": "ヤマダ",
            "given_name_kana": "タロウ",
            "birth_date": date(1960 + n % 40, 1 + n % 12, 1 + n % 28),
            "sex": "M",
            "coupon_number": make_damm_coupon_number(n),
            "address": "",
            "protected": False,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(residents)
    ]
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Resident), rows[start : start + 5000])
        # Only the table just filled: statistics that say "empty" for dose_record would
        # stand until autovacuum analyses it again (see "Plans" in docs/benchmarks.md).
        conn.execute(text("ANALYZE resident"))
    engine.dispose()
    return token


class Records:
    """Fresh records: dose 1 for serial 0, 1, 2, ... (most have a registered resident)."""

    def __init__(self) -> None:
        self.serial = 0

    def next(self) -> dict[str, Any]:
        self.serial += 1
        return {
            "client_record_id": str(uuid.uuid4()),
            "coupon": f"11{MUNICIPALITY}{make_damm_coupon_number(self.serial)}",
            "vaccinated_on": "2023-05-01",
            "product": COMIRNATY,
            "lot": LOT,
            "site_code": SITE,
            "source": random.choice(("qr", "ocr")),
        }


@dataclass
class Phase:
    name: str
    records: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> str:
        p50, p99 = p50_p99_ms(self.latencies)
        return (
            f"{self.name}: {self.records} records in {self.seconds:.1f} s = "
            f"{self.records / self.seconds:,.0f} records/s; requests: {len(self.latencies)}, "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; errors {self.errors}"
        )


async def drive(
    client: httpx.AsyncClient, phase: Phase, requests: int, concurrency: int, make: Any
) -> None:
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            path, payload, size = make()
            started = time.perf_counter()
            answer = await client.post(path, json=payload)
            phase.latencies.append(time.perf_counter() - started)
            if answer.status_code not in (200, 201):
                phase.errors += 1
            phase.records += size

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - started


async def run(args: argparse.Namespace, token: str) -> list[Phase]:
    records = Records()
    limits = httpx.Limits(max_connections=max(args.concurrency, args.batch_concurrency))
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{args.port}",
        headers={"Authorization": f"Bearer {token}"},
        limits=limits,
        timeout=120,
    ) as client:
        warm = Phase("warm-up")
        await drive(client, warm, 500, 16, lambda: ("/v1/dose-records", records.next(), 1))
        single = Phase(f"single posts, concurrency {args.concurrency}")
        await drive(
            client,
            single,
            args.singles,
            args.concurrency,
            lambda: ("/v1/dose-records", records.next(), 1),
        )

        def batch() -> tuple[str, dict[str, Any], int]:
            payload = {"records": [records.next() for _ in range(args.batch_size)]}
            return "/v1/dose-records/batch", payload, args.batch_size

        batches = Phase(f"batches of {args.batch_size}, concurrency {args.batch_concurrency}")
        await drive(client, batches, args.batches, args.batch_concurrency, batch)
    return [single, batches]


WRK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk")


def run_wrk(
    args: argparse.Namespace, token: str, script: str, connections: int, base: int, batch_size: int
) -> str:
    """One wrk phase; its summary lines (requests/s, latency percentiles, errors)."""
    env = {
        **os.environ,
        "VRS_TOKEN": token,
        "VRS_MUNICIPALITY": MUNICIPALITY,
        "VRS_SITE": SITE,
        "VRS_SERIAL_BASE": str(base),
        "VRS_THREADS": "2",
        "VRS_BATCH_SIZE": str(batch_size),
    }
    command = [
        "wrk", "-t2", f"-c{connections}", f"-d{args.seconds}s", "--timeout", "30s", "--latency",
        "-s", os.path.join(WRK_DIR, script), f"http://127.0.0.1:{args.port}",
    ]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout  # noqa: S603
    keep = ("Requests/sec", " 50%", " 99%", "Non-2xx", "requests in", "Socket errors")
    return "\n".join(
        line for line in out.splitlines() if line.startswith(keep) or any(k in line for k in keep)
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"setting up {args.residents} residents ...", flush=True)
    token = set_up_database(args.database_url, args.residents)
    server = start_server(
        args.database_url, args.port, workers=args.workers, env={"VRS_ENV": "development"}
    )
    try:
        if args.driver == "wrk":
            print(run_wrk(args, token, "post_dose.lua", 16, 10_000_000, 1), "(warm-up)")
            print(f"single posts, {args.concurrency} connections:", flush=True)
            print(run_wrk(args, token, "post_dose.lua", args.concurrency, 1, 1), flush=True)
            print(
                f"batches of {args.batch_size}, {args.batch_concurrency} connections "
                "(requests/s x batch size = records/s):",
                flush=True,
            )
            print(
                run_wrk(
                    args,
                    token,
                    "post_batch.lua",
                    args.batch_concurrency,
                    20_000_000,
                    args.batch_size,
                ),
                flush=True,
            )
            return
        for phase in asyncio.run(run(args, token)):
            print(phase.report(), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
