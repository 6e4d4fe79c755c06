"""PostgreSQL's COPY ceiling: rows/s of ``COPY ... FROM STDIN`` into a resident-shaped table
with no indexes, from psycopg 3 on the same machine. The resident import (which also
validates, hashes, checks uniqueness and upserts) is compared with this figure.

    .venv/bin/python benchmarks/copy_ceiling.py --database-url postgresql://postgres@127.0.0.1:5432/bench_ingest
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import psycopg

TABLE = """
CREATE TEMP TABLE copy_ceiling (
    municipality_code text, local_id text, family_name text, given_name text,
    family_name_kana text, given_name_kana text, birth_date date, sex text,
    my_number_hmac text, coupon_number text, address text, protected boolean)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    row = ("131016", "", "山田", "太郎", "ヤマダ", "タロウ", date(1980, 4, 1), "M", "ab" * 32,
           "", "東京都千代田区", False)  # fmt: skip
    with psycopg.connect(args.database_url) as conn:
        conn.execute(TABLE)
        started = time.perf_counter()
        with conn.cursor().copy("COPY copy_ceiling FROM STDIN") as copy:
            for n in range(args.rows):
                copy.write_row((*row[:1], f"L{n:09d}", *row[2:9], f"{n:010d}", *row[10:]))
        seconds = time.perf_counter() - started
    print(f"COPY {args.rows:,} rows in {seconds:.1f} s = {args.rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
