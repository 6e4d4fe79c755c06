"""Bulk dose import throughput: one CSV of N paper-form doses through the real HTTP endpoint.

Resets the VRS tables of the database it is given, imports ``--residents`` residents (through
the resident import; they hold the coupon numbers of the first half of the doses' coupons),
writes a seeded CSV of ``--rows`` doses (doses 1 and 2 of ``rows / 2`` coupons, 21-35 days
apart, a known lot on most rows, an unknown one on every 50th), starts
``uvicorn --factory vrs.app:app_from_env`` and posts the dose file twice (a first import
that creates every record, then the same file again: all unchanged). Reports rows/s per
import, the CPU seconds of the server and of its PostgreSQL backends, the load average
and the server's peak RSS. See benchmarks/README.md.

    .venv/bin/python benchmarks/dose_import.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_muni_import
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from _harness import MUNICIPALITY, post_import, reset_database, start_server
from resident_import import memory_kib
from resident_import import write_csv as write_residents
from sqlalchemy import text
from sqlmodel import Session

from vrs.db.engine import make_engine
from vrs.db.models import VaccineLot
from vrs.domain.auth import SYSTEM, Role, create_credential
from vrs.domain.checkdigits import make_damm_coupon_number
from vrs.domain.dose_import import DOSE_COLUMNS
from vrs.domain.places import add_site
from vrs.domain.reference import COMIRNATY

SITES = [f"13100000{n:02d}" for n in range(10, 30)]
LOT = "FA1234"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="PostgreSQL URL; its tables are reset")
    p.add_argument("--rows", type=int, default=1_000_000, help="doses in the file")
    p.add_argument("--residents", type=int, default=250_000, help="residents imported first")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--port", type=int, default=8301)
    return p.parse_args(argv)


def write_doses(path: Path, rows: int, seed: int) -> None:
    """Doses 1 and 2 of ``rows // 2`` coupons (deterministic for a seed)."""
    rng = random.Random(seed)
    start = date(2021, 6, 1)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(DOSE_COLUMNS) + "\n")
        for n in range(rows // 2):
            coupon = make_damm_coupon_number(n)
            first = start + timedelta(days=rng.randrange(400))
            second = first + timedelta(days=rng.randint(21, 35))
            site = rng.choice(SITES)
            for dose, day in ((1, first), (2, second)):
                lot = "UNKNOWN9" if n % 50 == 0 else LOT
                out.write(f"1{dose}{MUNICIPALITY}{coupon},{day},{COMIRNATY},{lot},{site},\n")


def set_up_database(url: str) -> str:
    """Fresh tables, reference data, the sites and lot, and a municipality token."""
    now = datetime.now(UTC)
    engine = reset_database(url, now)
    with Session(engine) as s:
        for code in SITES:
            add_site(s, actor=SYSTEM, code=code, name=f"site {code}", now=now)
        s.add(VaccineLot(lot_number=LOT, product_code=COMIRNATY, expires_on=date(2030, 1, 1)))
        token = create_credential(
            s,
            actor=SYSTEM,
            role=Role.MUNICIPALITY,
            name="benchmark staff",
            municipality_code=MUNICIPALITY,
            now=now,
        ).token
        s.commit()
    engine.dispose()
    return token


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_cpu(url: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to the benchmark's database (the
    server runs on this machine), so the database's share of an import can be told from the
    load the other users of a shared machine put on it."""
    engine = make_engine(url)
    with engine.connect() as conn:
        pids = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalars()
        found = {int(pid): cpu_seconds(int(pid)) for pid in pids}
    engine.dispose()
    return found


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vrs-bench-") as work:
        residents = Path(work) / "residents.csv"
        doses = Path(work) / "doses.csv"
        write_residents(residents, args.residents, args.seed)
        started = time.perf_counter()
        write_doses(doses, args.rows, args.seed)
        size_mb = doses.stat().st_size / 1e6
        took = time.perf_counter() - started
        print(f"generated {args.rows:,} doses ({size_mb:.0f} MB) in {took:.1f} s")
        token = set_up_database(args.database_url)
        server = start_server(
            args.database_url,
            args.port,
            env={"VRS_DATA_DIR": str(Path(work) / "data"), "VRS_ENV": "test"},
        )
        try:
            elapsed, result = post_import(args.port, token, residents, "residents")
            print(f"residents: {args.residents:,} in {elapsed:.1f} s")
            for label in ("first import (all created)", "same file again (all unchanged)"):
                server_cpu, pg_cpu = cpu_seconds(server.pid), backend_cpu(args.database_url)
                elapsed, result = post_import(args.port, token, doses, "dose-records")
                server_cpu = cpu_seconds(server.pid) - server_cpu
                pg_after = backend_cpu(args.database_url)
                pg_used = sum(t - pg_cpu.get(pid, 0.0) for pid, t in pg_after.items())
                peak = memory_kib(server.pid, "VmHWM") / 1024
                print(
                    f"{label}: {elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s, "
                    f"CPU: server {server_cpu:.1f} s, PostgreSQL {pg_used:.1f} s, "
                    f"server peak RSS {peak:.0f} MiB, load {os.getloadavg()}; {result}"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
