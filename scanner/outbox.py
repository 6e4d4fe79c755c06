"""The site's durable outbox: every dose record is written here before any network call.

One SQLite file (WAL journal, ``synchronous=FULL``, so a record that :meth:`Outbox.enqueue`
returned survives a power cut). Each record carries the client record id the tablet gave it;
every post of it, however often retried, sends that id, so the service's idempotency turns
"at least once" into "exactly once".

A record moves through these states::

    pending ──claim──▶ sending ──2xx──▶ sent
       ▲                  │ ──409──▶ conflict   (kept for staff, never retried by itself)
       │                  │ ──4xx──▶ rejected   (kept for staff with the server's code)
       └── 5xx, timeout, ─┘
           reset, refused
           (backoff)

A process that dies while a record is ``sending`` leaves it there; the next sender that takes
the outbox's sender lock (:mod:`scanner.sender`) puts it back to ``pending`` with
:meth:`Outbox.recover_sending`, and it is posted again under the same client record id.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from scanner.errors import ScanError

__all__ = [
    "Confirmation",
    "DeliveryError",
    "InvalidRecord",
    "Outbox",
    "OutboxError",
    "OutboxRecord",
    "RecordDraft",
    "RecordState",
    "default_outbox_path",
]

#: Schema version kept in ``PRAGMA user_version``.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox_record (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    client_record_id TEXT    NOT NULL UNIQUE,
    coupon           TEXT    NOT NULL,
    vaccinated_on    TEXT    NOT NULL,
    product          TEXT    NOT NULL,
    lot              TEXT    NOT NULL,
    site_code        TEXT    NOT NULL,
    device           TEXT,
    source           TEXT    NOT NULL,
    lot_source       TEXT    NOT NULL,
    confirmation     TEXT    NOT NULL,
    doctor_name      TEXT,
    state            TEXT    NOT NULL CHECK (state IN
                         ('pending', 'sending', 'sent', 'rejected', 'conflict')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL    NOT NULL,
    last_error       TEXT,
    error_code       TEXT,
    http_status      INTEGER,
    server_record_id TEXT,
    server_status    TEXT,
    flags            TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    sent_at          TEXT
);
CREATE INDEX IF NOT EXISTS outbox_record_due ON outbox_record (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS outbox_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class OutboxError(ScanError):
    """Base of the delivery errors (a :class:`scanner.ScanError`): ``code`` is stable, the
    message is for people.

    ::

        OutboxError                 codes: OUTBOX_UNREADABLE, OUTBOX_TOO_NEW, UNKNOWN_RECORD,
        │                                  NOT_REQUEUEABLE
        ├── InvalidRecord           a draft the service would refuse for sure (MALFORMED_COUPON,
        │                           BAD_DATE, BAD_SITE_CODE, BAD_SOURCE, BAD_LOT, ...)
        └── DeliveryError           the sender cannot deliver at all (SENDER_BUSY, BAD_API_URL)
    """


class InvalidRecord(OutboxError, ValueError):
    """A record that is refused before it reaches the outbox."""


class DeliveryError(OutboxError):
    """The sender cannot deliver (another sender holds the outbox, or no usable API URL)."""


class RecordState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    REJECTED = "rejected"
    CONFLICT = "conflict"


class Confirmation(StrEnum):
    """Whether staff matched the coupon to the person in front of them."""

    #: The masked preview was shown and staff confirmed it.
    CONFIRMED = "confirmed"
    #: No preview could be fetched (offline, service unreachable): checked later by the
    #: municipality like any unconfirmed record.
    UNCONFIRMED = "unconfirmed"
    #: The service has no preview for this coupon (holder not registered yet, or protected).
    NO_PREVIEW = "no_preview"


SOURCES = ("qr", "ocr", "manual")
LOT_SOURCES = ("barcode", "manual")
_LOT_TEXT = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,38}[\x21-\x7e])?$")


@dataclass(frozen=True)
class RecordDraft:
    """A dose as the tablet captured it, before it has a state."""

    coupon: str
    vaccinated_on: date
    product: str
    lot: str
    site_code: str
    source: str
    confirmation: Confirmation
    device: str | None = None
    lot_source: str = "manual"
    doctor_name: str | None = None
    client_record_id: str | None = None

    def checked(self) -> RecordDraft:
        """The same draft, or :class:`InvalidRecord` for content the service always refuses."""
        coupon = self.coupon.strip()
        if not (len(coupon) == 18 and coupon.isascii() and coupon.isdigit()):
            raise InvalidRecord("MALFORMED_COUPON", "the coupon line must be 18 digits")
        if not isinstance(self.vaccinated_on, date):
            raise InvalidRecord("BAD_DATE", "vaccinated_on must be a date")
        site = self.site_code.strip()
        if not (len(site) == 10 and site.isascii() and site.isdigit()):
            raise InvalidRecord("BAD_SITE_CODE", "the site code must be 10 digits")
        if self.source not in SOURCES:
            raise InvalidRecord("BAD_SOURCE", f"source must be one of {', '.join(SOURCES)}")
        if self.lot_source not in LOT_SOURCES:
            raise InvalidRecord(
                "BAD_LOT_SOURCE", f"lot_source must be one of {', '.join(LOT_SOURCES)}"
            )
        lot = self.lot.strip()
        if not _LOT_TEXT.match(lot):
            raise InvalidRecord("BAD_LOT", "the lot must be 1-40 printable ASCII characters")
        product = self.product.strip()
        if not product or len(product) > 40:
            raise InvalidRecord("UNKNOWN_PRODUCT", "a product code (e.g. EU/1/20/1528) is needed")
        if self.doctor_name is not None and len(self.doctor_name) > 100:
            raise InvalidRecord("INVALID_RECORD", "doctor_name is longer than 100 characters")
        client_id = self.client_record_id or str(uuid.uuid4())
        try:
            client_id = str(uuid.UUID(client_id))
        except ValueError:
            raise InvalidRecord("INVALID_RECORD", "client_record_id must be a UUID") from None
        return RecordDraft(
            coupon=coupon,
            vaccinated_on=self.vaccinated_on,
            product=product,
            lot=lot,
            site_code=site,
            source=self.source,
            confirmation=Confirmation(self.confirmation),
            device=self.device,
            lot_source=self.lot_source,
            doctor_name=self.doctor_name,
            client_record_id=client_id,
        )


@dataclass(frozen=True)
class OutboxRecord:
    """One row of the outbox."""

    seq: int
    client_record_id: str
    coupon: str
    vaccinated_on: date
    product: str
    lot: str
    site_code: str
    device: str | None
    source: str
    lot_source: str
    confirmation: Confirmation
    doctor_name: str | None
    state: RecordState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    error_code: str | None
    http_status: int | None
    server_record_id: str | None
    server_status: str | None
    flags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None

    def body(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/dose-records``: the same on every attempt."""
        body: dict[str, Any] = {
            "client_record_id": self.client_record_id,
            "coupon": self.coupon,
            "vaccinated_on": self.vaccinated_on.isoformat(),
            "product": self.product,
            "lot": self.lot,
            "site_code": self.site_code,
            "source": self.source,
        }
        if self.doctor_name:
            body["doctor_name"] = self.doctor_name
        return body


def default_outbox_path(environ: dict[str, str] | None = None) -> Path:
    """``$VRS_SCAN_OUTBOX``, else ``outbox.sqlite3`` in the user's data directory."""
    env = dict(os.environ) if environ is None else environ
    if env.get("VRS_SCAN_OUTBOX"):
        return Path(env["VRS_SCAN_OUTBOX"]).expanduser()
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "vrs-scan" / "outbox.sqlite3"


def _utc_text(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds")


class Outbox:
    """The outbox file. Safe to share between threads (one connection, one lock) and between
    processes (SQLite's own locking; claims run in ``BEGIN IMMEDIATE`` transactions).

    ``clock`` gives the current time in seconds since the epoch: backoff schedules and the
    timestamps are taken from it.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._depth = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if os.name == "posix" and not self.path.exists():
            # Coupon numbers are personal data: the file is for the scanner's user only, and
            # SQLite gives the -wal and -shm files the database file's mode.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            self._db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout=30000")
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError(
                    "OUTBOX_UNREADABLE", f"{self.path}: cannot use the WAL journal ({mode})"
                )
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise OutboxError("OUTBOX_UNREADABLE", f"{self.path}: {exc}") from exc

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OutboxError(
                "OUTBOX_TOO_NEW",
                f"{self.path} was written by a newer vrs-scan (schema {version}); upgrade",
            )
        if version < SCHEMA_VERSION:
            with self._transaction():
                # executescript() would commit on its own; run the statements one by one.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._depth:  # inside grouped(): one commit for the whole group
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth -= 1
            self._db.execute("COMMIT")

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Make every change inside the block one transaction: one commit (one fsync)
        instead of one per record, e.g. for the answers of a whole batch."""
        with self._transaction():
            yield

    # --- writing -------------------------------------------------------------------------

    def enqueue(self, draft: RecordDraft) -> OutboxRecord:
        """Store a new record as ``pending``; durable when this returns.

        Enqueueing a draft whose ``client_record_id`` is already stored returns the stored
        record unchanged (a repeated call after a crash does not make a second record).
        """
        checked = draft.checked()
        now = self._clock()
        stamp = _utc_text(now)
        with self._transaction() as db:
            db.execute(
                """INSERT INTO outbox_record (client_record_id, coupon, vaccinated_on, product,
                       lot, site_code, device, source, lot_source, confirmation, doctor_name,
                       state, attempts, next_attempt_at, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)
                   ON CONFLICT (client_record_id) DO NOTHING""",
                (
                    checked.client_record_id,
                    checked.coupon,
                    checked.vaccinated_on.isoformat(),
                    checked.product,
                    checked.lot,
                    checked.site_code,
                    checked.device,
                    checked.source,
                    checked.lot_source,
                    checked.confirmation.value,
                    checked.doctor_name,
                    now,
                    stamp,
                    stamp,
                ),
            )
        assert checked.client_record_id is not None
        stored = self.get(checked.client_record_id)
        assert stored is not None
        return stored

    def claim(self, limit: int) -> list[OutboxRecord]:
        """Move up to ``limit`` due ``pending`` records to ``sending`` (oldest first), counting
        the attempt, and return them. The change is committed before any network call."""
        now = self._clock()
        with self._transaction() as db:
            rows = db.execute(
                """SELECT seq FROM outbox_record
                   WHERE state = 'pending' AND next_attempt_at <= ?
                   ORDER BY next_attempt_at, seq LIMIT ?""",
                (now, limit),
            ).fetchall()
            seqs = [row["seq"] for row in rows]
            db.executemany(
                """UPDATE outbox_record SET state = 'sending', attempts = attempts + 1,
                       updated_at = ? WHERE seq = ?""",
                [(_utc_text(now), seq) for seq in seqs],
            )
        return self._by_seq(seqs)

    def recover_sending(self) -> int:
        """Put every ``sending`` record back to ``pending``, due now. Only a process holding the
        sender lock may call it: such records were left by a sender that died."""
        now = self._clock()
        with self._transaction() as db:
            cursor = db.execute(
                """UPDATE outbox_record SET state = 'pending', next_attempt_at = ?,
                       last_error = 'interrupted while sending (the sender stopped)',
                       updated_at = ? WHERE state = 'sending'""",
                (now, _utc_text(now)),
            )
            return cursor.rowcount

    def expedite(self) -> int:
        """Make every ``pending`` record due now (staff asked to send now, e.g. after fixing
        the token or the network); returns how many."""
        now = self._clock()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE outbox_record SET next_attempt_at = ? "
                "WHERE state = 'pending' AND next_attempt_at > ?",
                (now, now),
            )
            return cursor.rowcount

    def mark_sent(
        self,
        client_record_id: str,
        *,
        http_status: int,
        server_record_id: str,
        server_status: str,
        flags: Sequence[str] = (),
    ) -> None:
        """The service stored the record (201) or already had it (200)."""
        now = self._clock()
        self._finish(
            client_record_id,
            state=RecordState.SENT,
            http_status=http_status,
            server_record_id=server_record_id,
            server_status=server_status,
            flags=json.dumps(list(flags)),
            sent_at=_utc_text(now),
            last_error=None,
            error_code=None,
        )

    def mark_refused(
        self,
        client_record_id: str,
        *,
        state: RecordState,
        http_status: int,
        code: str,
        detail: str,
        server_record_id: str | None = None,
    ) -> None:
        """The service refused the record for good: ``rejected`` (4xx) or ``conflict`` (409)."""
        if state not in (RecordState.REJECTED, RecordState.CONFLICT):
            raise ValueError(f"not a refusal state: {state}")
        self._finish(
            client_record_id,
            state=state,
            http_status=http_status,
            error_code=code,
            last_error=detail,
            server_record_id=server_record_id,
        )

    def mark_retry(
        self,
        client_record_id: str,
        *,
        error: str,
        delay: float,
        code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        """Back to ``pending``, due in ``delay`` seconds (a transient failure)."""
        self._finish(
            client_record_id,
            state=RecordState.PENDING,
            next_attempt_at=self._clock() + max(0.0, delay),
            last_error=error,
            error_code=code,
            http_status=http_status,
        )

    def _finish(self, client_record_id: str, *, state: RecordState, **values: Any) -> None:
        values["state"] = state.value
        values["updated_at"] = _utc_text(self._clock())
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._transaction() as db:
            # Only a record this sender holds may change: a stale answer never overwrites a
            # record another path has finished.
            db.execute(
                f"UPDATE outbox_record SET {assignments} "  # noqa: S608 - names are ours
                "WHERE client_record_id = ? AND state = 'sending'",
                (*values.values(), client_record_id),
            )

    def requeue(self, client_record_id: str) -> OutboxRecord:
        """A staff decision: send a ``rejected`` or ``conflict`` record again (after the cause
        was fixed at the service, e.g. the municipality was registered)."""
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT state FROM outbox_record WHERE client_record_id = ?", (client_record_id,)
            ).fetchone()
            if row is None:
                raise OutboxError("UNKNOWN_RECORD", f"no record {client_record_id} in the outbox")
            if row["state"] not in (RecordState.REJECTED, RecordState.CONFLICT):
                raise OutboxError(
                    "NOT_REQUEUEABLE",
                    f"record {client_record_id} is {row['state']}; only rejected or conflict "
                    "records are sent again by hand",
                )
            db.execute(
                """UPDATE outbox_record SET state = 'pending', next_attempt_at = ?,
                       updated_at = ? WHERE client_record_id = ?""",
                (now, _utc_text(now), client_record_id),
            )
        stored = self.get(client_record_id)
        assert stored is not None
        return stored

    def set_note(self, key: str, value: str | None) -> None:
        """Remember a sender-wide condition (``status`` shows it), or forget it (None)."""
        with self._transaction() as db:
            if value is None:
                db.execute("DELETE FROM outbox_meta WHERE key = ?", (key,))
            else:
                db.execute(
                    "INSERT INTO outbox_meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    # --- reading -------------------------------------------------------------------------

    def note(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM outbox_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def get(self, client_record_id: str) -> OutboxRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM outbox_record WHERE client_record_id = ?", (client_record_id,)
            ).fetchone()
        return None if row is None else _record(row)

    def records(
        self, states: Iterable[RecordState] | None = None, *, limit: int | None = None
    ) -> list[OutboxRecord]:
        """Records in the order they were captured, optionally of some states only."""
        query = "SELECT * FROM outbox_record"
        params: list[Any] = []
        if states is not None:
            wanted = [RecordState(s).value for s in states]
            query += f" WHERE state IN ({', '.join('?' * len(wanted))})"
            params.extend(wanted)
        query += " ORDER BY seq"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [_record(row) for row in rows]

    def counts(self) -> dict[RecordState, int]:
        """How many records are in each state (every state present, zeros included)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, count(*) AS n FROM outbox_record GROUP BY state"
            ).fetchall()
        found = {RecordState(row["state"]): int(row["n"]) for row in rows}
        return {state: found.get(state, 0) for state in RecordState}

    def next_due(self) -> float | None:
        """When the earliest ``pending`` record is due (epoch seconds), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT min(next_attempt_at) AS t FROM outbox_record WHERE state = 'pending'"
            ).fetchone()
        return None if row["t"] is None else float(row["t"])

    def _by_seq(self, seqs: list[int]) -> list[OutboxRecord]:
        if not seqs:
            return []
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM outbox_record WHERE seq IN ({', '.join('?' * len(seqs))}) "  # noqa: S608
                "ORDER BY seq",
                seqs,
            ).fetchall()
        return [_record(row) for row in rows]


def _record(row: sqlite3.Row) -> OutboxRecord:
    return OutboxRecord(
        seq=row["seq"],
        client_record_id=row["client_record_id"],
        coupon=row["coupon"],
        vaccinated_on=date.fromisoformat(row["vaccinated_on"]),
        product=row["product"],
        lot=row["lot"],
        site_code=row["site_code"],
        device=row["device"],
        source=row["source"],
        lot_source=row["lot_source"],
        confirmation=Confirmation(row["confirmation"]),
        doctor_name=row["doctor_name"],
        state=RecordState(row["state"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        error_code=row["error_code"],
        http_status=row["http_status"],
        server_record_id=row["server_record_id"],
        server_status=row["server_status"],
        flags=tuple(json.loads(row["flags"])) if row["flags"] else (),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        sent_at=datetime.fromisoformat(row["sent_at"]) if row["sent_at"] else None,
    )
