"""Resident import throughput: one CSV of N residents through the real HTTP endpoint.

Resets the VRS tables of the database it is given, writes a seeded CSV of ``--rows``
residents (valid My Numbers, Damm-checked coupon numbers), starts
``uvicorn --factory vrs.app:app_from_env`` against the database, and posts the file twice
(a first import that creates every resident, then the same file again: all unchanged).
Reports rows/s per import and the server process's peak RSS. See benchmarks/README.md.

    .venv/bin/python benchmarks/resident_import.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_residents
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _harness import MUNICIPALITY, post_import, reset_database, start_server
from sqlmodel import Session

from vrs.domain.auth import SYSTEM, Role, create_credential
from vrs.domain.checkdigits import make_damm_coupon_number, my_number_check_digit
from vrs.domain.residents import RESIDENT_COLUMNS

FAMILY = [("山田", "ヤマダ"), ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ")]
GIVEN = [("太郎", "タロウ"), ("花子", "ハナコ"), ("翔", "ショウ"), ("美咲", "ミサキ")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="PostgreSQL URL; its tables are reset")
    p.add_argument("--rows", type=int, default=1_000_000, help="residents in the file")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--port", type=int, default=8766)
    return p.parse_args(argv)


def write_csv(path: Path, rows: int, seed: int) -> None:
    """A resident file of ``rows`` valid, distinct residents (deterministic for a seed)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(RESIDENT_COLUMNS) + "\n")
        for n in range(rows):
            family, family_kana = rng.choice(FAMILY)
            given, given_kana = rng.choice(GIVEN)
            body = f"{rng.randrange(10**11):011d}"
            my_number = body + str(my_number_check_digit(body))
            birth = f"{rng.randint(1920, 2022)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            out.write(
                f"{n:010d},{family},{given},{family_kana},{given_kana},{birth},"
                f"{rng.choice('MF')},{my_number},{make_damm_coupon_number(n)},"
                f"東京都千代田区千代田{n % 1000}-{n % 7},{'true' if n % 500 == 0 else 'false'}\n"
            )


def set_up_database(url: str) -> str:
    """Fresh tables, reference data, one municipality and its token."""
    now = datetime.now(UTC)
    engine = reset_database(url, now)
    with Session(engine) as s:
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


def memory_kib(pid: int, field: str) -> int:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vrs-bench-") as work:
        csv_path = Path(work) / "residents.csv"
        started = time.perf_counter()
        write_csv(csv_path, args.rows, args.seed)
        size_mb = csv_path.stat().st_size / 1e6
        took = time.perf_counter() - started
        print(f"generated {args.rows:,} rows ({size_mb:.0f} MB) in {took:.1f} s")
        token = set_up_database(args.database_url)
        server = start_server(
            args.database_url,
            args.port,
            env={"VRS_DATA_DIR": str(Path(work) / "data"), "VRS_ENV": "test"},
        )
        try:
            print(f"server idle RSS: {memory_kib(server.pid, 'VmRSS') / 1024:.0f} MiB")
            for label in ("first import (all created)", "same file again (all unchanged)"):
                elapsed, result = post_import(args.port, token, csv_path, "residents")
                peak = memory_kib(server.pid, "VmHWM") / 1024
                print(
                    f"{label}: {elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s, "
                    f"server peak RSS {peak:.0f} MiB; {result}"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
