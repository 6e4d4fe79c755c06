"""Certificate issuance throughput: ``POST /v1/certificates`` end to end on PostgreSQL.

Sets up the database it is given (its VRS tables are dropped and recreated): residents with a
My Number hash and two recorded Comirnaty doses each, and an open resident session for each
(inserted directly: sign-in is not what is measured). Makes a development key ring in a
temporary data directory, starts ``uvicorn --factory vrs.app:app_from_env`` against both, and
drives ``POST /v1/certificates`` with httpx/asyncio (``--path portable``: through the
SQLAlchemy path instead of the PostgreSQL fast path). Every request signs a new certificate
(ES256), stores it with its dose-record links and audit row, and answers with the ``HC1:``
text. See benchmarks/README.md.

    .venv/bin/python benchmarks/certificates.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_certsvc_issue
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from _harness import MUNICIPALITY, p50_p99_ms, reset_database, start_server
from sqlalchemy import insert, text
from sqlmodel import Session

from keys import KeyRing, open_key_store, ring_directory
from vrs.db.models import DoseRecord, Resident, ResidentSession
from vrs.domain.auth import SYSTEM, hash_token
from vrs.domain.checkdigits import make_damm_coupon_number, my_number_check_digit
from vrs.domain.mynumber import my_number_hmac
from vrs.domain.places import add_site
from vrs.domain.reference import COMIRNATY
from vrs.domain.resident_auth import SESSION_PREFIX
from vrs.settings import DEV_MY_NUMBER_KEY

SITE = "1310000017"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="PostgreSQL URL; its tables are reset")
    p.add_argument("--port", type=int, default=8201)
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--residents", type=int, default=2_000, help="residents with sessions")
    p.add_argument("--requests", type=int, default=6_000, help="certificates to issue")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    p.add_argument(
        "--path",
        choices=("fast", "portable"),
        default="fast",
        help="fast: the asynchronous psycopg path (the default on PostgreSQL); portable: "
        "the SQLAlchemy path (VRS_CERTIFICATE_FAST_PATH=0), for comparison",
    )
    return p.parse_args(argv)


def my_number(n: int) -> str:
    first11 = f"{100_000_000_00 + n:011d}"
    return first11 + str(my_number_check_digit(first11))


def set_up(url: str, residents: int, data_dir: Path) -> list[str]:
    """Residents with two doses each and a session each; returns the session tokens."""
    now = datetime.now(UTC)
    engine = reset_database(url, now)
    with Session(engine) as s:
        add_site(s, actor=SYSTEM, code=SITE, name="benchmark site", now=now)
        s.commit()
    key = DEV_MY_NUMBER_KEY.encode()
    people, doses, sessions, tokens = [], [], [], []
    for n in range(residents):
        local_id, coupon = f"C{n:09d}", make_damm_coupon_number(n + 1)
        hmac_hex = my_number_hmac(key, my_number(n))
        birth = date(1950 + n % 50, 1 + n % 12, 1 + n % 28)
        people.append(
            {
                "municipality_code": MUNICIPALITY,
                "local_id": local_id,
                "family_name": "山田",
                "given_name": "太郎",
                "family_name_kana": "ヤマダ",
                "given_name_kana": "タロウ",
                "birth_date": birth,
                "sex": "M",
                "my_number_hmac": hmac_hex,
                "coupon_number": coupon,
                "address": "",
                "protected": False,
                "created_at": now,
                "updated_at": now,
            }
        )
        for dose, day in ((1, date(2023, 4, 1)), (2, date(2023, 4, 22))):
            doses.append(
                {
                    "municipality_code": MUNICIPALITY,
                    "id": uuid.uuid4(),
                    "coupon_number": coupon,
                    "dose_number": dose,
                    "resident_local_id": local_id,
                    "vaccinated_on": day,
                    "product_code": COMIRNATY,
                    "lot_number": "FA1234",
                    "site_code": SITE,
                    "source": "qr",
                    "status": "recorded",
                    "locked": False,
                    "version": 1,
                    "registered_at": now,
                    "updated_at": now,
                }
            )
        token = SESSION_PREFIX + uuid.uuid4().hex + uuid.uuid4().hex
        tokens.append(token)
        sessions.append(
            {
                "id": uuid.uuid4(),
                "token_hash": hash_token(token),
                "my_number_hmac": hmac_hex,
                "birth_date": birth,
                "card_key": "0" * 64,
                "created_at": now,
                "expires_at": now + timedelta(hours=6),
                "client_address": "127.0.0.1",
            }
        )
    with engine.begin() as conn:
        for table, rows in ((Resident, people), (DoseRecord, doses), (ResidentSession, sessions)):
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[start : start + 5000])
        # Only the tables just filled (see "Plans" in docs/benchmarks.md).
        conn.execute(text("ANALYZE resident, dose_record, resident_session"))
    engine.dispose()
    store = open_key_store({}, data_dir=data_dir, development=True)
    KeyRing.open_or_init(ring_directory(data_dir), store, now=now, development=True)
    return tokens


@dataclass
class Phase:
    name: str
    done: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def report(self) -> str:
        p50, p99 = p50_p99_ms(self.latencies)
        return (
            f"{self.name}: {self.done} certificates in {self.seconds:.1f} s = "
            f"{self.done / self.seconds:,.0f} certificates/s; p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms; errors (by status, 0 = connection) {self.errors or 0}"
        )


async def drive(
    client: httpx.AsyncClient, phase: Phase, tokens: list[str], requests: int, concurrency: int
) -> None:
    remaining = iter(range(requests))

    async def worker() -> None:
        for n in remaining:
            headers = {"Authorization": "Bearer " + tokens[n % len(tokens)]}
            started = time.perf_counter()
            try:
                answer = await client.post(
                    "/v1/certificates", json={"kind": "domestic"}, headers=headers
                )
            except httpx.TransportError:  # counted: a reset connection is a failed request
                phase.errors[0] = phase.errors.get(0, 0) + 1
                continue
            phase.latencies.append(time.perf_counter() - started)
            if answer.status_code == 201:
                phase.done += 1
            else:
                phase.errors[answer.status_code] = phase.errors.get(answer.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - started


async def run(args: argparse.Namespace, tokens: list[str]) -> list[Phase]:
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{args.port}", limits=limits, timeout=120
    ) as client:
        warm = Phase("warm-up")
        await drive(client, warm, tokens, 300, 8)
        main_phase = Phase(
            f"POST /v1/certificates ({args.path} path), concurrency {args.concurrency}"
        )
        await drive(client, main_phase, tokens, args.requests, args.concurrency)
    return [warm, main_phase]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (Linux ``/proc``)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vrs-bench-certs-") as folder:
        data_dir = Path(folder)
        print(f"setting up {args.residents} residents with two doses and a session ...")
        tokens = set_up(args.database_url, args.residents, data_dir)
        server = start_server(
            args.database_url,
            args.port,
            workers=args.workers,
            env={
                "VRS_ENV": "development",
                "VRS_DATA_DIR": str(data_dir),
                "VRS_CERTIFICATE_FAST_PATH": "1" if args.path == "fast" else "0",
            },
        )
        try:
            load_before = os.getloadavg()
            cpu_before = _cpu_seconds(server.pid)
            client_before = time.process_time()
            phases = asyncio.run(run(args, tokens))
            cpu = _cpu_seconds(server.pid) - cpu_before
            client_cpu = time.process_time() - client_before
            for phase in phases:
                print(phase.report(), flush=True)
            issued = sum(phase.done for phase in phases)
            print(
                f"server CPU (all workers): {cpu:.1f} s = {cpu / issued * 1000:.2f} ms per "
                f"certificate; load generator CPU {client_cpu / issued * 1000:.2f} ms per "
                f"certificate; load average before {load_before[0]:.2f}, after "
                f"{os.getloadavg()[0]:.2f}",
                flush=True,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
