"""The two engine-specific statements concurrent writers need, behind portable functions.

Domain code calls these and never looks at the dialect itself:

- :func:`insert_ignoring_conflicts`: ``INSERT ... ON CONFLICT DO NOTHING`` so that racing
  writers of one natural key store exactly one row and nobody sees an ``IntegrityError``.
- :func:`lock_keys`: transaction-scoped locks on arbitrary keys (a coupon's dose series),
  so that work reading and then writing one series runs one transaction at a time.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def insert_ignoring_conflicts(session: Session, table: Table) -> Insert:
    """An INSERT into ``table`` that skips rows violating any unique constraint."""
    return _insert_ignoring(_dialect(session), table)


@functools.cache
def _insert_ignoring(dialect: str, table: Table) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


_LOCK = text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:ids AS bigint[])) AS t(k)")


def key_id(key: str) -> int:
    """A signed 64-bit lock id for ``key`` (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def lock_keys(session: Session, keys: Iterable[str]) -> None:
    """Hold a lock on every key until the session's transaction ends.

    PostgreSQL: advisory transaction locks, taken in a fixed order so that two transactions
    locking overlapping sets cannot deadlock. SQLite: nothing to do, because every
    transaction there starts with ``BEGIN IMMEDIATE`` and so already runs alone.
    """
    if _dialect(session) != "postgresql":
        return
    ids = sorted({key_id(k) for k in keys})
    if not ids:
        return
    session.connection().execute(_LOCK, {"ids": ids})
