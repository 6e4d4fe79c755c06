"""History look-up throughput: 100,000 My Numbers through the real HTTP endpoint.

Resets the VRS tables of the database it is given, adds a second municipality (新宿区
131041), imports ``--people`` residents with My Numbers into 新宿区 and the same people
into 千代田区 (131016: they moved), bulk-imports doses 1 and 2 for each of them in 新宿区,
then posts one look-up of all their My Numbers from 千代田区 (each is hashed, matched,
its doses returned, the resident linked and the linked series re-evaluated). Reports the
seconds and numbers/s. See benchmarks/README.md.

    .venv/bin/python benchmarks/history_lookup.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_muni_history
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
from _harness import MUNICIPALITY, post_import, reset_database, start_server
from dose_import import LOT, SITES, write_doses
from resident_import import write_csv as write_residents
from sqlmodel import Session

from vrs.db.models import VaccineLot
from vrs.domain.auth import SYSTEM, Role, create_credential
from vrs.domain.places import add_municipality, add_site
from vrs.domain.reference import COMIRNATY

OTHER = "131041"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--database-url", required=True, help="PostgreSQL URL; its tables are reset")
    p.add_argument("--people", type=int, default=100_000, help="My Numbers looked up")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--port", type=int, default=8302)
    return p.parse_args(argv)


def set_up_database(url: str) -> tuple[str, str]:
    """Fresh tables, both municipalities, sites, the lot, and a token for each."""
    now = datetime.now(UTC)
    engine = reset_database(url, now)
    with Session(engine) as s:
        add_municipality(s, actor=SYSTEM, code=OTHER, name="新宿区", now=now)
        for code in SITES:
            add_site(s, actor=SYSTEM, code=code, name=f"site {code}", now=now)
        s.add(VaccineLot(lot_number=LOT, product_code=COMIRNATY, expires_on=date(2030, 1, 1)))
        tokens = tuple(
            create_credential(
                s, actor=SYSTEM, role=Role.MUNICIPALITY, name=f"staff {m}",
                municipality_code=m, now=now,
            ).token
            for m in (MUNICIPALITY, OTHER)
        )  # fmt: skip
        s.commit()
    engine.dispose()
    return tokens[0], tokens[1]


def my_numbers(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [row["my_number"] for row in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vrs-bench-") as work:
        residents = Path(work) / "residents.csv"
        doses = Path(work) / "doses.csv"
        write_residents(residents, args.people, args.seed)
        write_doses(doses, 2 * args.people, args.seed)
        doses.write_text(doses.read_text().replace(MUNICIPALITY, OTHER))
        here, there = set_up_database(args.database_url)
        server = start_server(
            args.database_url,
            args.port,
            env={"VRS_DATA_DIR": str(Path(work) / "data"), "VRS_ENV": "test"},
        )
        try:
            post_import(args.port, there, residents, "residents", municipality=OTHER)
            post_import(args.port, here, residents, "residents")
            post_import(args.port, there, doses, "dose-records", municipality=OTHER)
            numbers = my_numbers(residents)
            print(f"set up: {args.people:,} people with 2 doses each in {OTHER}")
            for label in ("first look-up (links made)", "same look-up again"):
                started = time.perf_counter()
                response = httpx.post(
                    f"http://127.0.0.1:{args.port}/v1/municipalities/{MUNICIPALITY}/history-lookup",
                    json={"purpose": "benchmark: residents who moved in", "my_numbers": numbers},
                    headers={"Authorization": f"Bearer {here}"},
                    timeout=3600,
                )
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise SystemExit(
                        f"look-up failed: {response.status_code} {response.text[:500]}"
                    )
                body = response.json()
                print(
                    f"{label}: {len(numbers):,} numbers in {elapsed:.1f} s "
                    f"({len(numbers) / elapsed:,.0f}/s); found {body['found']:,}, "
                    f"doses {body['doses']:,}, linked {body['linked']:,}, "
                    f"answer {len(response.content) / 1e6:.0f} MB"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
