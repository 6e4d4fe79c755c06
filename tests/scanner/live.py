"""Real servers on loopback for the delivery tests: ``vrs serve`` in a child process (which a
test may SIGKILL and start again), uvicorn in a thread, and a small HTTP proxy that breaks
the conversation on purpose (500s, resets, delays, held requests).

Nothing here replaces the sender's code: the sender talks real HTTP over real sockets to a
real service on a real database; the proxy only does what a bad network or gateway does.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from scanner.outbox import Confirmation, Outbox, RecordDraft, RecordState
from tests.conftest import World
from tests.vrs.dose_support import GOOD_LOT, line
from vrs.domain.reference import COMIRNATY

#: Generous: the machine is shared, and a deadline only bounds a wait that polls.
DEADLINE = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


class ServeProcess:
    """``python -m vrs serve`` on a fixed loopback port, against the test's database."""

    def __init__(self, database_url: str, data_dir: Path, port: int | None = None) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ServeProcess:
        self._log = (self.data_dir / f"serve-{self.port}.log").open("ab")
        env = {
            **os.environ,
            "VRS_DATABASE_URL": self.database_url,
            "VRS_DATA_DIR": str(self.data_dir),
            "VRS_ENV": "test",
        }
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [*self._command(), "--log-level", "warning", "--no-access-log"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        proc = self._proc
        wait_until(
            lambda: (proc.poll() is None and _answers(self.port)) or self._died(),
            f"vrs serve on port {self.port}",
        )
        assert proc.poll() is None, f"vrs serve exited: {self.log_text()}"
        return self

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "vrs", "serve", "--port", str(self.port)]

    def _died(self) -> bool:
        return self._proc is not None and self._proc.poll() is not None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, like a pulled plug."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        path = self.data_dir / f"serve-{self.port}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class ThreadServer:
    """The test's app (frozen clock, caches off) served by uvicorn in a thread."""

    app: FastAPI
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        server = self._server
        wait_until(lambda: server.started, "uvicorn in a thread")
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=30)


class Fault(StrEnum):
    PASS = "pass"  # forward, relay the answer
    FAIL_500 = "500"  # answer 500 without forwarding
    FORWARD_THEN_500 = "forward-then-500"  # the service commits; the tablet sees a 500
    RESET = "reset"  # reset the connection without forwarding
    FORWARD_THEN_RESET = "forward-then-reset"  # the service commits; the connection resets
    SLOW = "slow"  # forward, relay the answer after ``proxy.delay`` seconds
    HOLD = "hold"  # wait for ``proxy.release()``, then forward
    HOLD_THEN_DROP = "hold-then-drop"  # wait for ``proxy.release()``, then reset, not forwarded
    FORWARD_THEN_HOLD = "forward-then-hold"  # forward, hold the answer until released


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te"}


class FaultProxy:
    """An HTTP/1.1 proxy on loopback whose answers to dose-record posts follow a script.

    Other requests (the preview, health) always pass. Each scripted fault is used once, in
    order; then ``default`` applies. ``log`` lists ``(path, fault)`` per dose post.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.default = Fault.PASS
        self.delay = 1.0
        self.log: list[tuple[str, Fault]] = []
        self.forwarded = threading.Event()  # a request reached the service in full
        self.held = threading.Event()  # a request or answer is being held
        self._release = threading.Event()
        self._script: list[Fault] = []
        self._draw: Callable[[], Fault] | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._script.extend(faults)

    def release(self) -> None:
        self._release.set()

    def faults_seen(self) -> list[Fault]:
        with self._lock:
            return [fault for _path, fault in self.log]

    def randomly(self, seed: int, weights: dict[Fault, int]) -> None:
        """After the script, draw each fault from ``weights`` (a seeded, repeatable draw)."""
        rng = random.Random(seed)
        faults, counts = list(weights), list(weights.values())
        self._draw = lambda: rng.choices(faults, counts)[0]

    def _next(self, path: str) -> Fault:
        with self._lock:
            if self._script:
                fault = self._script.pop(0)
            else:
                fault = self._draw() if self._draw is not None else self.default
            self.log.append((path, fault))
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._relay(Fault.PASS, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = (
                    proxy._next(self.path)
                    if self.path.startswith("/v1/dose-records")
                    else Fault.PASS
                )
                self._relay(fault, body)

            def _relay(self, fault: Fault, body: bytes) -> None:
                if fault is Fault.FAIL_500:
                    return self._answer(500, b'{"code": "INTERNAL_ERROR", "status": 500}')
                if fault is Fault.RESET:
                    return self._reset()
                if fault in (Fault.HOLD, Fault.HOLD_THEN_DROP):
                    proxy.held.set()
                    proxy._release.wait()
                if fault is Fault.HOLD_THEN_DROP:
                    return self._reset()
                answer = self._forward(body)
                if answer is None:  # the service died under the request
                    return self._reset()
                if fault is Fault.FORWARD_THEN_500:
                    return self._answer(500, b"<html>502 Bad Gateway</html>", "text/html")
                if fault is Fault.FORWARD_THEN_RESET:
                    return self._reset()
                if fault is Fault.SLOW:
                    time.sleep(proxy.delay)
                if fault is Fault.FORWARD_THEN_HOLD:
                    proxy.held.set()
                    proxy._release.wait()
                status, headers, payload = answer
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return None

            def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes] | None:
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=120)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    headers["Content-Length"] = str(len(body))
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    proxy.forwarded.set()
                    response = upstream.getresponse()
                    return response.status, response.getheaders(), response.read()
                except (OSError, http.client.HTTPException):
                    return None
                finally:
                    upstream.close()

            def _answer(self, status: int, payload: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _reset(self) -> None:
                # SO_LINGER 0: close() sends RST, the client sees "connection reset".
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True

            def finish(self) -> None:
                with contextlib.suppress(OSError):
                    super().finish()

            def handle(self) -> None:
                # The client went away, or the socket was reset on purpose.
                with contextlib.suppress(OSError, ValueError):
                    super().handle()

        return Handler


# --- records and checks ------------------------------------------------------------------


def drafts(count: int, *, site: str = "1310000017", first_serial: int = 1) -> list[RecordDraft]:
    """``count`` new dose-1 records of distinct Damm-checked coupons of 131016."""
    return [
        RecordDraft(
            coupon=line(first_serial + i),
            vaccinated_on=date(2023, 5, 1),
            product=COMIRNATY,
            lot=GOOD_LOT,
            site_code=site,
            source="qr",
            confirmation=Confirmation.CONFIRMED,
            device="tablet 1",
            lot_source="barcode",
        )
        for i in range(count)
    ]


def fill(outbox: Outbox, count: int, **kw: Any) -> list[str]:
    return [outbox.enqueue(d).client_record_id for d in drafts(count, **kw)]


def stored_client_ids(world: World) -> list[tuple[str, str]]:
    """``(client_record_id, id)`` of every dose record in the service's database."""
    with world.session() as s:
        rows = s.execute(text("SELECT client_record_id, id FROM dose_record")).all()
    # SQLite keeps UUIDs as 32 hex digits, PostgreSQL as uuid: compare them in one form.
    return [(str(uuid.UUID(str(cid))), str(uuid.UUID(str(rid)))) for cid, rid in rows]


def assert_stored_exactly_once(world: World, outbox: Outbox, client_ids: list[str]) -> None:
    """Every record is in the database once, under its client id, and the outbox says it was
    sent with the id the database gave it."""
    stored = stored_client_ids(world)
    by_client = {cid: rid for cid, rid in stored}
    assert len(stored) == len(by_client), "a client record id is stored twice"
    assert sorted(by_client) == sorted(client_ids)
    for cid in client_ids:
        record = outbox.get(cid)
        assert record is not None
        assert record.state is RecordState.SENT, (cid, record.state, record.last_error)
        assert record.server_record_id == by_client[cid]
    counts = outbox.counts()
    assert counts[RecordState.SENT] == len(client_ids)
    assert counts[RecordState.PENDING] == counts[RecordState.SENDING] == 0


def all_sent(outbox: Outbox, count: int) -> Callable[[], bool]:
    return lambda: outbox.counts()[RecordState.SENT] == count
