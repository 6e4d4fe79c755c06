"""Open statistics latency on about ten million dose records.

Resets the VRS tables of the database it is given and fills the ``dose_stats`` summary in
one of two ways, then starts ``uvicorn`` and times typical ``GET /v1/stats/doses`` requests
(median of ``--repeat``). See benchmarks/README.md.

- ``--load generate`` (the default): the summary directly (SQL ``generate_series``):
  1,741 municipalities x 700 days x ``--keys-per-day`` keys a day (product, dose number,
  age band), each with 1-10 doses, about ten million doses by default;
- ``--load import``: ``--records`` dose records through the real write path, so that the
  triggers and the import keep the summary: ``--municipalities`` municipalities each
  import their residents (95% of the coupons; birth years 1920-2022) and then their doses
  in files of ``--file-rows`` rows through ``POST .../dose-records/import`` (doses 1 and 2
  of each coupon, three products with a known lot each). Prints the load time, then
  checks the summary against a count over ``dose_record`` (once, not timed), and times
  the queries on the summary as the imports left it and again after ``vrs stats compact``.

    .venv/bin/python benchmarks/stats.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_muni_stats
    .venv/bin/python benchmarks/stats.py --load import --records 10000000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_muni_stats10m
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from _harness import post_import, reset_database, start_server
from resident_import import write_csv as write_residents
from sqlalchemy import Engine, text
from sqlmodel import Session

from vrs.db import stats as summary
from vrs.db.models import VaccineLot
from vrs.domain.auth import SYSTEM, Role, create_credential
from vrs.domain.checkdigits import make_damm_coupon_number, municipality_check_digit
from vrs.domain.dose_import import DOSE_COLUMNS
from vrs.domain.places import add_municipality, add_site
from vrs.domain.reference import COMIRNATY, SPIKEVAX, VAXZEVRIA

QUERIES = [
    "group_by=date",
    "group_by=product,dose_number",
    "group_by=age_band&from=2022-01-01&to=2022-12-31",
    "group_by=municipality&from=2022-06-01&to=2022-06-30",
    "group_by=date,product&from=2022-01-01&to=2022-03-31",
    "group_by=municipality,dose_number&format=csv",
    "group_by=date,municipality,product,age_band,dose_number&from=2022-06-01&to=2022-06-01",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="PostgreSQL URL; its tables are reset")
    p.add_argument("--load", choices=("generate", "import"), default="generate")
    p.add_argument("--keys-per-day", type=int, default=2, help="generate: rows a municipality-day")
    p.add_argument("--records", type=int, default=10_000_000, help="import: dose records")
    p.add_argument("--municipalities", type=int, default=20, help="import: how many")
    p.add_argument("--file-rows", type=int, default=250_000, help="import: rows a file")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--port", type=int, default=8303)
    return p.parse_args(argv)


FILL = """
INSERT INTO dose_stats (municipality_code, id, vaccinated_on, product_code, dose_number,
                        age_band, doses)
SELECT lpad(m::text, 6, '0'), gen_random_uuid(), DATE '2021-02-17' + d,
       (ARRAY['EU/1/20/1528','EU/1/20/1507','EU/1/21/1529','EU/1/21/1618','EU/1/20/1525'])
           [1 + (m + d + k) % 5],
       1 + (d / 180 + k) % 5,
       (ARRAY['0-4','5-11','12-17','18-29','30-39','40-49','50-59','60-64','65-74','75+'])
           [1 + (m * 7 + d + k) % 10],
       1 + (m * 31 + d * 17 + k * 13) % 10
FROM generate_series(1, 1741) AS m, generate_series(0, 699) AS d,
     generate_series(1, :keys) AS k
"""


#: One known lot a product, so that the imported doses open no lot flags.
LOTS = {COMIRNATY: "FA1234", SPIKEVAX: "MD5678", VAXZEVRIA: "AZ0001"}
SITES = [f"13100000{n:02d}" for n in range(10, 30)]


def municipality_codes(count: int) -> list[str]:
    """``count`` valid codes of prefecture 13 (Tokyo), 131016 first."""
    codes = []
    for body in range(13101, 13101 + count):
        codes.append(f"{body}{municipality_check_digit(str(body))}")
    return codes


def write_doses(path: Path, municipality: str, coupons: range, seed: int) -> int:
    """Doses 1 and 2 of each coupon serial in ``coupons``; the number of rows."""
    rng = random.Random(seed)
    products = list(LOTS)
    start = date(2021, 2, 17)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(DOSE_COLUMNS) + "\n")
        for n in coupons:
            coupon = make_damm_coupon_number(n)
            first = start + timedelta(days=rng.randrange(620))
            second = first + timedelta(days=rng.randint(28, 42))  # every product's interval
            product = products[n % len(products)]
            site = rng.choice(SITES)
            for dose, day in ((1, first), (2, second)):
                out.write(
                    f"1{dose}{municipality}{coupon},{day},{product},{LOTS[product]},{site},\n"
                )
    return 2 * len(coupons)


def load_through_imports(args: argparse.Namespace, engine: Engine, work: Path) -> None:
    """The ``--load import`` set-up: residents, then the dose files, through the server."""
    now = datetime.now(UTC)
    codes = municipality_codes(args.municipalities)
    tokens = {}
    with Session(engine) as s:
        for code in codes[1:]:  # the harness added the first
            add_municipality(s, actor=SYSTEM, code=code, name=f"区 {code}", now=now)
        for code in SITES:
            add_site(s, actor=SYSTEM, code=code, name=f"site {code}", now=now)
        for product, lot in LOTS.items():
            s.add(VaccineLot(lot_number=lot, product_code=product, expires_on=date(2030, 1, 1)))
        s.flush()
        for code in codes:
            tokens[code] = create_credential(
                s, actor=SYSTEM, role=Role.MUNICIPALITY, name="staff", municipality_code=code,
                now=now,
            ).token  # fmt: skip
        s.commit()
    engine.dispose()
    coupons = args.records // 2 // len(codes)
    per_file = args.file_rows // 2
    with served(args, work):
        started, residents = time.perf_counter(), 0
        for i, code in enumerate(codes):
            path = work / "residents.csv"
            write_residents(path, coupons * 95 // 100, args.seed + i)
            residents += post_import(args.port, tokens[code], path, "residents", code)[1]["rows"]
        took = time.perf_counter() - started
        print(f"residents: {residents:,} in {took:.0f} s (files written in between), load "
              f"{os.getloadavg()}")  # fmt: skip
        spent, rows, files, slowest = 0.0, 0, 0, 0.0
        for i, code in enumerate(codes):
            for first in range(0, coupons, per_file):
                path = work / "doses.csv"
                written = write_doses(path, code, range(first, min(first + per_file, coupons)),
                                      args.seed * 1000 + i * 100 + files)  # fmt: skip
                elapsed, _ = post_import(args.port, tokens[code], path, "dose-records", code)
                spent, rows, files = spent + elapsed, rows + written, files + 1
                slowest = max(slowest, elapsed)
            print(f"  {code}: {rows:,} doses so far, {rows / spent:,.0f} rows/s, load "
                  f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        print(
            f"doses: {rows:,} in {files} files, {spent:.0f} s of imports ({rows / spent:,.0f} "
            f"rows/s; slowest file {slowest:.1f} s), load {os.getloadavg()}"
        )


def check_summary(engine: Engine) -> None:
    """The summary against a count over ``dose_record`` (not timed)."""
    started = time.perf_counter()
    with engine.connect() as conn:
        conn.exec_driver_sql("SET work_mem = '256MB'")
        recount = summary.recount_sql(conn.dialect.name)
        missing, extra, keys, doses = conn.execute(
            text(
                f"WITH s AS ({summary.TOTALS_SQL}), d AS ({recount}) "  # noqa: S608
                "SELECT (SELECT count(*) FROM (SELECT * FROM d EXCEPT SELECT * FROM s) a), "
                "(SELECT count(*) FROM (SELECT * FROM s EXCEPT SELECT * FROM d) b), "
                "(SELECT count(*) FROM s), (SELECT sum(doses) FROM s)"
            )
        ).one()
    took = time.perf_counter() - started
    print(f"summary check: {keys:,} keys, {doses:,} doses; {missing} keys missing or wrong, "
          f"{extra} extra ({took:.0f} s)")  # fmt: skip
    if missing or extra:
        raise SystemExit("the summary does not match dose_record")


def summary_rows(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        rows, doses = conn.execute(text("SELECT count(*), sum(doses) FROM dose_stats")).one()
    return int(rows), int(doses)


@contextmanager
def served(args: argparse.Namespace, work: Path) -> Iterator[None]:
    """The app served on ``--port`` while the block runs."""
    server = start_server(
        args.database_url, args.port, env={"VRS_DATA_DIR": str(work), "VRS_ENV": "test"}
    )
    try:
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def time_queries(args: argparse.Namespace, work: Path, label: str) -> None:
    print(f"{label} (load {os.getloadavg()}):")
    with (
        served(args, work),
        httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=600) as client,
    ):
        for query in QUERIES:
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                response = client.get(f"/v1/stats/doses?{query}")
                times.append(time.perf_counter() - t)
                response.raise_for_status()
            size = len(response.content) / 1e3
            print(
                f"  {query}: median {statistics.median(times) * 1000:,.0f} ms "
                f"(min {min(times) * 1000:,.0f}), {size:,.0f} kB"
            )


def vacuum_analyze(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE dose_stats")
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    engine = reset_database(args.database_url, datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix="vrs-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        if args.load == "generate":
            with engine.begin() as conn:
                conn.execute(text(FILL), {"keys": args.keys_per_day})
        else:
            load_through_imports(args, engine, work)
            check_summary(engine)
        vacuum_analyze(engine)
        rows, doses = summary_rows(engine)
        print(f"summary: {rows:,} rows, {doses:,} doses, ready in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        time_queries(args, work, "queries")
        if args.load == "import":
            with engine.begin() as conn:
                rows = summary.compact(conn)
            vacuum_analyze(engine)
            print(f"compacted: {rows:,} summary rows")
            time_queries(args, work, "queries after vrs stats compact")
    engine.dispose()


if __name__ == "__main__":
    main()
