"""Open statistics latency on a generated summary of about ten million dose records.

Resets the VRS tables of the database it is given and fills the ``dose_stats`` summary
directly (SQL ``generate_series``; the triggers that keep it on writes are measured by the
ingest and import benchmarks): 1,741 municipalities x 700 days x ``--keys-per-day`` keys a
day (product, dose number, age band), each with 1-10 doses, i.e. about ``--rows`` summary
rows and ten million doses by default. Then starts ``uvicorn`` and times typical
``GET /v1/stats/doses`` requests (median of ``--repeat``), before and after
``vrs stats compact`` has nothing left to fold (one row per key, as here). See
benchmarks/README.md.

    .venv/bin/python benchmarks/stats.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_muni_stats
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from _harness import reset_database, start_server
from sqlalchemy import text

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
    p.add_argument("--keys-per-day", type=int, default=2, help="summary rows per municipality-day")
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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    engine = reset_database(args.database_url, datetime.now(UTC))
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(FILL), {"keys": args.keys_per_day})
        rows, doses = conn.execute(text("SELECT count(*), sum(doses) FROM dose_stats")).one()
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM ANALYZE dose_stats")
        )
    engine.dispose()
    print(
        f"summary: {rows:,} rows, {doses:,} doses, filled in {time.perf_counter() - started:.0f} s"
    )
    with tempfile.TemporaryDirectory(prefix="vrs-bench-") as work:
        server = start_server(
            args.database_url, args.port, env={"VRS_DATA_DIR": str(Path(work)), "VRS_ENV": "test"}
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=600) as client:
                for query in QUERIES:
                    times = []
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        response = client.get(f"/v1/stats/doses?{query}")
                        times.append(time.perf_counter() - t)
                        response.raise_for_status()
                    size = len(response.content) / 1e3
                    print(
                        f"{query}: median {statistics.median(times) * 1000:,.0f} ms "
                        f"(min {min(times) * 1000:,.0f}), {size:,.0f} kB"
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
