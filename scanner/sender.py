"""Delivering the outbox to the record service: exactly once, whatever the network does.

:class:`Sender` claims due records (``pending`` → ``sending``, committed first), posts them
with their client record ids — one record alone to ``POST /v1/dose-records``, several to the
batch endpoint — and files each answer:

============================================  ===========================================
answer                                         the record becomes
============================================  ===========================================
201 stored, 200 already stored                 ``sent`` (server id, status, flag codes)
409 ``CONFLICT``/``RECORD_LOCKED``/...         ``conflict``, the code kept for staff
409 ``RETRY``                                  ``pending``, sent again after a backoff
other 4xx (``BAD_LOT``, ``UNKNOWN_SITE``...)   ``rejected``, the code kept for staff
401, 403 ``ROLE_NOT_ALLOWED`` or               ``pending`` (held): the tablet's credential
``DEVICE_NOT_ENROLLED``, 404/405/3xx            or URL is wrong, not the record; the reason
                                                is noted for ``vrs-scan status``
408, 425, 429, 5xx, timeouts, refused,         ``pending``, after exponential backoff with
reset or dropped connections                    jitter (``Retry-After`` honoured)
============================================  ===========================================

Only one sender works on an outbox at a time: it holds an OS file lock beside the outbox
file (released by the OS when the process dies, however it dies). Taking the lock puts back
every record a dead sender left ``sending``; they go out again under the same client record
ids, and the service answers ``200`` for any it had already stored.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

import httpx

from scanner.client import ApiClient, problem_code
from scanner.outbox import DeliveryError, Outbox, OutboxRecord, RecordState

__all__ = ["Backoff", "SendReport", "Sender", "SenderLock"]

log = logging.getLogger("scanner.sender")

#: The service's batch endpoint takes up to 1,000 records; 100 keeps one answer small.
DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 1000
#: Codes that speak about the tablet (its credential, its enrolment), not about a record.
HOLD_CODES = frozenset({"MISSING_TOKEN", "BAD_TOKEN", "ROLE_NOT_ALLOWED", "DEVICE_NOT_ENROLLED"})
RETRY_STATUSES = frozenset({408, 425, 429})
#: Key of the outbox note that says why the sender is holding everything back.
SENDER_NOTE = "sender_error"
LAST_CONTACT_NOTE = "last_contact"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": attempt n waits between half and all of
    ``min(cap, base * 2**(n-1))`` seconds, so tablets that lost the network together do not
    come back together."""

    base: float = 1.0
    cap: float = 300.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** max(0, min(attempts, 60) - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass
class SendReport:
    """What one pass over the outbox did."""

    sent: int = 0
    rejected: int = 0
    conflict: int = 0
    retried: int = 0
    held: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def delivered_all(self) -> bool:
        return self.retried == 0 and self.held == 0

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.rejected += other.rejected
        self.conflict += other.conflict
        self.retried += other.retried
        self.held += other.held
        self.errors.extend(other.errors)


class SenderLock:
    """An exclusive OS lock on ``<outbox>.sender-lock``; the OS drops it when the process ends."""

    def __init__(self, outbox_path: Path) -> None:
        self.path = outbox_path.with_name(outbox_path.name + ".sender-lock")
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another sender holds it."""
        if self._file is not None:
            return True
        handle = open(self.path, "a+b")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            if os.name == "nt":
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases flock/msvcrt locks
            self._file = None


@dataclass(frozen=True)
class _Verdict:
    state: RecordState
    code: str | None = None
    detail: str = ""
    retry_after: float | None = None
    hold: bool = False


class Sender:
    """Posts the outbox's due records; call :meth:`start` for a background thread, or
    :meth:`send_due` for one pass in the caller's thread.

    ``clock``/``sleep`` are injectable for tests of the schedule; ``rng`` seeds the jitter.
    """

    def __init__(
        self,
        outbox: Outbox,
        client: ApiClient,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        idle_poll: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_SIZE}")
        self.outbox = outbox
        self.client = client
        self.batch_size = batch_size
        self.backoff = backoff or Backoff()
        self.idle_poll = idle_poll
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self._clock = clock
        self._lock = SenderLock(outbox.path)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- ownership -----------------------------------------------------------------------

    def acquire(self) -> int:
        """Take the outbox's sender lock and recover what a dead sender left ``sending``.

        Returns how many records were recovered; raises ``DeliveryError("SENDER_BUSY")`` when
        another sender (in this or another process) holds the outbox.
        """
        if not self._lock.acquire():
            raise DeliveryError(
                "SENDER_BUSY",
                f"another vrs-scan sender is delivering {self.outbox.path}; it will send "
                "this outbox's records",
            )
        recovered = self.outbox.recover_sending()
        if recovered:
            log.warning("re-sending %d record(s) left in flight by a stopped sender", recovered)
        return recovered

    def release(self) -> None:
        self._lock.release()

    # --- background thread ---------------------------------------------------------------

    def start(self) -> None:
        """Acquire the outbox and deliver in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            raise RuntimeError("the sender is already running")
        self.acquire()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="vrs-scan-sender", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Send now (a record was just enqueued) instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> bool:
        """Ask the thread to finish the request in flight and stop; True when it stopped.

        A request still running after ``timeout`` leaves its records ``sending``; the next
        sender sends them again.
        """
        self._stop.set()
        self._wake.set()
        stopped = True
        if self._thread is not None:
            self._thread.join(timeout)
            stopped = not self._thread.is_alive()
            self._thread = None
        if stopped:
            self.release()
        return stopped

    def run_forever(self, stop: threading.Event) -> None:
        """Deliver in the calling thread until ``stop`` is set (the CLI's ``send --loop``)."""
        self._stop = stop
        self._run()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_due()
            except Exception:  # never let the delivery thread die of one bad pass
                log.exception("sender pass failed; trying again later")
            due = self.outbox.next_due()
            wait = self.idle_poll if due is None else due - self._clock()
            self._wake.wait(min(max(wait, 0.0), self.idle_poll))
            self._wake.clear()

    # --- one pass ------------------------------------------------------------------------

    def send_due(self) -> SendReport:
        """Post every due record, batch by batch; stop early at a transient failure (the
        records of that batch wait out their backoff) or when asked to stop."""
        report = SendReport()
        while not self._stop.is_set():
            records = self.outbox.claim(self.batch_size)
            if not records:
                break
            part = self._deliver(records)
            report.add(part)
            if not part.delivered_all:
                break
        return report

    def _deliver(self, records: list[OutboxRecord]) -> SendReport:
        try:
            if len(records) == 1:
                response = self.client.post_record(records[0].body())
                return self._file_single(records[0], response)
            response = self.client.post_batch([r.body() for r in records])
            return self._file_batch(records, response)
        except httpx.TransportError as exc:
            detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
            return self._retry_all(records, _Verdict(RecordState.PENDING, "NETWORK", detail))
        except Exception as exc:
            # A defect, not the network: keep the records safe for the next pass, then report.
            self._retry_all(records, _Verdict(RecordState.PENDING, "CLIENT_ERROR", repr(exc)))
            raise

    def _file_single(self, record: OutboxRecord, response: httpx.Response) -> SendReport:
        body = _json(response)
        if response.status_code == 409 and isinstance(body.get("record"), dict):
            server_id = body["record"].get("id")
        else:
            server_id = None
        verdict = _judge(response.status_code, response, body)
        with self.outbox.grouped():  # one commit for the answer and the note
            self._note_contact(verdict)
            return self._apply(record, verdict, response.status_code, body, server_id)

    def _file_batch(self, records: list[OutboxRecord], response: httpx.Response) -> SendReport:
        body = _json(response)
        results = body.get("results") if response.status_code == 200 else None
        if not isinstance(results, list) or len(results) != len(records):
            if response.status_code == 413 or (
                response.status_code == 422 and problem_code(response)[0] == "BATCH_TOO_LARGE"
            ):
                # Never expected at our batch size; halve it and try again at once.
                self.batch_size = max(1, self.batch_size // 2)
                verdict = _Verdict(RecordState.PENDING, problem_code(response)[0], retry_after=0)
            elif response.status_code == 200:
                verdict = _Verdict(RecordState.PENDING, "BAD_ANSWER", "malformed batch answer")
            else:
                verdict = _judge(response.status_code, response, body)
                if verdict.state is not RecordState.PENDING:
                    # A refusal of the whole envelope is not a verdict on each record.
                    verdict = _Verdict(RecordState.PENDING, verdict.code, verdict.detail, hold=True)
            with self.outbox.grouped():
                self._note_contact(verdict)
                return self._retry_all(records, verdict, http_status=response.status_code)
        report = SendReport()
        with self.outbox.grouped():
            self._note_contact(_Verdict(RecordState.SENT))
            for record, item in zip(records, results, strict=True):
                report.add(self._file_item(record, item))
        return report

    def _file_item(self, record: OutboxRecord, item: Any) -> SendReport:
        """One result of a batch answer: ``{"index", "status", "record" | "error"}``."""
        item = item if isinstance(item, dict) else {}
        status = item.get("status")
        payload = item.get("record") if status in (200, 201) else item.get("error")
        payload = payload if isinstance(payload, dict) else {}
        server_record = payload.get("record") if status == 409 else payload
        server_id = server_record.get("id") if isinstance(server_record, dict) else None
        verdict = _judge(status if isinstance(status, int) else 0, None, payload)
        return self._apply(record, verdict, status, payload, server_id)

    def _apply(
        self,
        record: OutboxRecord,
        verdict: _Verdict,
        http_status: Any,
        body: dict[str, Any],
        server_id: Any,
    ) -> SendReport:
        cid = record.client_record_id
        status = http_status if isinstance(http_status, int) else None
        if verdict.state is RecordState.SENT:
            if not isinstance(body.get("id"), str):
                return self._retry_all(
                    [record], _Verdict(RecordState.PENDING, "BAD_ANSWER", "no record id")
                )
            flags = [
                f["rule_code"]
                for f in body.get("flags") or []
                if isinstance(f, dict) and isinstance(f.get("rule_code"), str)
            ]
            self.outbox.mark_sent(
                cid,
                http_status=status or 200,
                server_record_id=body["id"],
                server_status=str(body.get("status", "")),
                flags=flags,
            )
            return SendReport(sent=1)
        if verdict.state in (RecordState.REJECTED, RecordState.CONFLICT):
            self.outbox.mark_refused(
                cid,
                state=verdict.state,
                http_status=status or 0,
                code=verdict.code or "REJECTED",
                detail=verdict.detail,
                server_record_id=server_id if isinstance(server_id, str) else None,
            )
            if verdict.state is RecordState.CONFLICT:
                return SendReport(conflict=1)
            return SendReport(rejected=1)
        return self._retry_all([record], verdict, http_status=status)

    def _retry_all(
        self, records: list[OutboxRecord], verdict: _Verdict, *, http_status: int | None = None
    ) -> SendReport:
        with self.outbox.grouped():
            self._reschedule(records, verdict, http_status)
        error = f"{verdict.code}: {verdict.detail}".rstrip(": ")
        if verdict.hold:
            return SendReport(held=len(records), errors=[error])
        return SendReport(retried=len(records), errors=[error])

    def _reschedule(
        self, records: list[OutboxRecord], verdict: _Verdict, http_status: int | None
    ) -> None:
        for record in records:
            if verdict.retry_after is not None:
                delay = min(verdict.retry_after, self.backoff.cap)
            else:
                delay = self.backoff.delay(record.attempts, self._rng)
            self.outbox.mark_retry(
                record.client_record_id,
                error=f"{verdict.code}: {verdict.detail}" if verdict.detail else str(verdict.code),
                code=verdict.code,
                http_status=http_status,
                delay=delay,
            )

    def _note_contact(self, verdict: _Verdict) -> None:
        """Keep the sender-wide reason ``vrs-scan status`` shows in step with the answers."""
        if verdict.hold:
            self.outbox.set_note(SENDER_NOTE, f"{verdict.code}: {verdict.detail}")
        elif verdict.code != "NETWORK":
            self.outbox.set_note(SENDER_NOTE, None)
            self.outbox.set_note(LAST_CONTACT_NOTE, _iso_now(self._clock()))


def _iso_now(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _judge(status: int, response: httpx.Response | None, body: dict[str, Any]) -> _Verdict:
    """What one answer (a whole response, or one item of a batch answer) means for a record."""
    raw_code, raw_detail = body.get("code"), body.get("detail")
    code = raw_code if isinstance(raw_code, str) and raw_code else f"HTTP_{status}"
    detail = raw_detail if isinstance(raw_detail, str) else ""
    if status in (200, 201):
        return _Verdict(RecordState.SENT)
    if status == 409:
        if code == "RETRY":
            return _Verdict(RecordState.PENDING, code, detail)
        return _Verdict(RecordState.CONFLICT, code, detail)
    if status in RETRY_STATUSES or status >= 500:
        return _Verdict(RecordState.PENDING, code, detail, retry_after=_retry_after(response))
    if code in HOLD_CODES or status in (401, 404, 405) or 300 <= status < 400:
        # 404/405 here is a wrong API URL (a record never makes a post 404).
        return _Verdict(RecordState.PENDING, code, detail or "refused", hold=True)
    if 400 <= status < 500:
        return _Verdict(RecordState.REJECTED, code, detail)
    return _Verdict(RecordState.PENDING, code, detail or f"unexpected status {status}")


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())
