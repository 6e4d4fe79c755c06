"""What the benchmark scripts share: a fresh database and a served app to drive."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

from vrs.db.engine import make_engine
from vrs.domain.auth import SYSTEM
from vrs.domain.places import add_municipality
from vrs.domain.reference import seed_reference_data

MUNICIPALITY = "131016"


def reset_database(url: str, now: datetime) -> Engine:
    """Drop and recreate the VRS tables of ``url``, seed the reference data and add
    municipality 131016; the caller adds what its benchmark needs and disposes the engine."""
    engine = make_engine(url)
    with engine.begin() as conn:
        SQLModel.metadata.drop_all(conn)
        SQLModel.metadata.create_all(conn)
    with Session(engine) as s:
        seed_reference_data(s)
        add_municipality(s, actor=SYSTEM, code=MUNICIPALITY, name="千代田区", now=now)
        s.commit()
    return engine


def start_server(
    url: str, port: int, *, workers: int = 1, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``uvicorn --factory vrs.app:app_from_env`` on ``url``, once ``/healthz`` answers."""
    environment = {**os.environ, "VRS_DATABASE_URL": url, **(env or {})}
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "vrs.app:app_from_env",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=environment)  # noqa: S603 - our interpreter, fixed args
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not come up")


def file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk


def post_import(
    port: int, token: str, path: Path, what: str, municipality: str = MUNICIPALITY
) -> tuple[float, dict[str, int]]:
    """Stream a CSV file to ``/v1/municipalities/{municipality}/{what}/import``: seconds taken
    and the answer (a failed import ends the benchmark with the server's answer)."""
    started = time.perf_counter()
    response = httpx.post(
        f"http://127.0.0.1:{port}/v1/municipalities/{municipality}/{what}/import",
        content=file_chunks(path),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "text/csv",
            "Content-Length": str(path.stat().st_size),
        },
        timeout=3600,
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{what} import failed: {response.status_code} {response.text[:2000]}")
    result: dict[str, int] = response.json()
    return elapsed, result


def p50_p99_ms(latencies: list[float]) -> tuple[float, float]:
    """Median and 99th percentile of latencies in seconds, in milliseconds (0 when empty)."""
    if not latencies:
        return 0.0, 0.0
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000
