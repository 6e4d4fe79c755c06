"""The service's signing keys: the key ring under the data directory, and its operations.

The ring (CSCA, document signers, trust-bundle key) is the ``keys`` library's
:class:`keys.KeyRing` in ``<data dir>/keys``; the private keys live in a key store:

- ``file`` (default): encrypted PKCS#8 files in ``<data dir>/keys/private``, passphrase from
  ``VRS_KEY_PASSPHRASE`` (development mode: a public development passphrase when unset);
- ``pkcs11``: an HSM token (``VRS_PKCS11_MODULE``, ``VRS_PKCS11_TOKEN``, ``VRS_PKCS11_PIN``).

Development mode makes a ring on first use; production refuses and says to run
``vrs keys init``. Every key operation (init, rotate) is audit-logged.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

import keys
from keys import DscEntry, KeyRing, KeysError, KeyStore, Signer, TrustBundleSigner
from vrs.domain import audit
from vrs.domain.auth import Principal, Role, require_role
from vrs.domain.errors import Unavailable, Unprocessable
from vrs.settings import Settings


def ring_directory(settings: Settings) -> Path:
    return keys.ring_directory(settings.data_dir)


def key_store(settings: Settings, environ: Mapping[str, str] | None = None) -> KeyStore:
    """The key store ``VRS_KEY_STORE`` names (``file`` or ``pkcs11``; see docs/keys.md)."""
    try:
        return keys.open_key_store(
            os.environ if environ is None else environ,
            data_dir=settings.data_dir,
            development=not settings.is_production,
        )
    except KeysError as exc:
        raise _unavailable(exc) from None


class KeysUnavailable(Unavailable):
    """The key ring cannot be used (not initialised, wrong passphrase, HSM down)."""


def _unavailable(exc: KeysError) -> KeysUnavailable:
    return KeysUnavailable(exc.code, f"signing keys: {exc.message}")


class ServiceKeys:
    """The ring as the running service uses it: opened on first use, re-read when
    ``vrs keys rotate`` changed it in another process."""

    def __init__(self, settings: Settings, store: KeyStore | None = None) -> None:
        self.settings = settings
        self._store = store
        self._ring: KeyRing | None = None
        self._lock = threading.Lock()

    def ring(self, now: datetime) -> KeyRing:
        try:
            ring = self._ring
            if ring is None:
                with self._lock:
                    if self._ring is None:
                        store = self._store or key_store(self.settings)
                        self._ring = KeyRing.open_or_init(
                            ring_directory(self.settings),
                            store,
                            now=now,
                            development=not self.settings.is_production,
                        )
                    ring = self._ring
            else:
                ring.refresh()  # `vrs keys rotate` in another process takes effect here
            return ring
        except KeysError as exc:
            if exc.code == "RING_MISSING":
                raise KeysUnavailable(
                    "KEYS_NOT_INITIALISED",
                    "the service has no signing keys yet; run `vrs keys init`",
                ) from None
            raise _unavailable(exc) from None

    def signer(self, now: datetime) -> Signer:
        ring = self.ring(now)
        try:
            return ring.signer()
        except KeysError as exc:
            raise _unavailable(exc) from None

    def bundle_signer(self, now: datetime) -> TrustBundleSigner:
        ring = self.ring(now)
        try:
            return ring.bundle_signer()
        except KeysError as exc:
            raise _unavailable(exc) from None


def _dsc_details(dsc: DscEntry) -> dict[str, str]:
    return {
        "label": dsc.label,
        "kid": dsc.kid.hex(),
        "not_before": dsc.not_before.isoformat(),
        "not_after": dsc.not_after.isoformat(),
    }


def init_keys(session: Session, *, settings: Settings, actor: Principal, now: datetime) -> KeyRing:
    """Make the key ring (CSCA, first DSC, trust-bundle key); audit-logged, not committed."""
    require_role(actor, Role.ADMIN)
    try:
        ring = KeyRing.init(ring_directory(settings), key_store(settings), now=now)
    except KeysError as exc:
        raise Unprocessable(exc.code, exc.message) from None
    audit.record(
        session,
        actor,
        "keys.init",
        now=now,
        subject=ring.active.label,
        details={
            "csca": ring.csca.subject,
            "bundle_kid": ring.bundle_kid.hex(),
            **_dsc_details(ring.active),
        },
    )
    return ring


def rotate_keys(
    session: Session, *, settings: Settings, actor: Principal, now: datetime
) -> tuple[DscEntry, DscEntry]:
    """Make a new DSC the active signer; returns (retired, new). Audit-logged, not committed."""
    require_role(actor, Role.ADMIN)
    try:
        ring = KeyRing.open(ring_directory(settings), key_store(settings))
        old = ring.active
        new = ring.rotate(now=now)
    except KeysError as exc:
        raise Unprocessable(exc.code, exc.message) from None
    retired = next(d for d in ring.dscs if d.label == old.label)
    audit.record(
        session,
        actor,
        "keys.rotate",
        now=now,
        subject=new.label,
        details={
            "retired": old.label,
            "retired_listed_until": retired.listed_until.isoformat(),
            **_dsc_details(new),
        },
    )
    return retired, new


def list_keys(session: Session, *, settings: Settings, actor: Principal, now: datetime) -> KeyRing:
    """The ring, for listing (audit-logged as a key operation)."""
    require_role(actor, Role.ADMIN)
    try:
        ring = KeyRing.open(ring_directory(settings), key_store(settings))
    except KeysError as exc:
        raise Unprocessable(exc.code, exc.message) from None
    audit.record(session, actor, "keys.list", now=now, count=len(ring.dscs))
    return ring
