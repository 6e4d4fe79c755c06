"""The key ring: the CSCA, the document signers over time, and the trust-bundle signing key.

The ring's metadata is a directory of files (the service's data dir), the private keys are in a
:class:`keys.KeyStore`:

- ``keyring.json`` — the authoritative record (written atomically, under a lock file);
- ``csca.pem``, ``<dsc label>.pem`` — the certificates, for operators;
- ``trust-bundle-key.pem`` — the trust-bundle signing key's public half, which verifiers pin.

Rotation makes a new DSC the active signer. A retired DSC stays *listed* (in the trust bundle)
until the last certificate it could have signed has expired: its last signing time plus the
longest certificate validity plus a grace for workers still holding the old signer, and never
past its own ``notAfter``. A DSC's validity is its signing period plus the longest certificate
validity, so a certificate signed on its last day still expires inside it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keys.certificates import (
    ALL_CERTIFICATE_TYPES,
    CertificateInfo,
    CertificateType,
    create_csca,
    create_dsc,
    load_certificate,
)
from keys.errors import KeyRingError, KeysError
from keys.signer import Signer, TrustBundleSigner, bundle_kid
from keys.stores import KeyStore

RING_FILE = "keyring.json"
LOCK_FILE = "keyring.lock"
BUNDLE_KEY_FILE = "trust-bundle-key.pem"
CSCA_FILE = "csca.pem"
_FORMAT = "vrs-key-ring"
_VERSION = 1

DscStatus = Literal["active", "retired", "expired"]


@dataclass(frozen=True)
class RingSettings:
    """Lifetimes the ring works with (defaults: certificates 1 year, a DSC signs for 1 year)."""

    #: The longest validity of a certificate a DSC signs (``certs.issue`` never exceeds it).
    max_certificate_validity: timedelta = timedelta(days=365)
    #: How long a DSC is the active signer before it needs rotating.
    dsc_signing_period: timedelta = timedelta(days=365)
    #: Extra listing time after retirement for workers that still sign with the old DSC.
    rotation_grace: timedelta = timedelta(hours=1)
    csca_validity: timedelta = timedelta(days=3652)
    certificate_types: frozenset[CertificateType] = field(default=ALL_CERTIFICATE_TYPES)

    def __post_init__(self) -> None:
        for name in ("max_certificate_validity", "dsc_signing_period", "csca_validity"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise KeyRingError("BAD_SETTING", f"{name} must be a positive timedelta")
        if self.rotation_grace < timedelta(0):
            raise KeyRingError("BAD_SETTING", "rotation_grace must not be negative")
        if self.dsc_validity + self.rotation_grace > self.csca_validity:
            raise KeyRingError("BAD_SETTING", "a DSC's validity must fit inside the CSCA's")

    @property
    def dsc_validity(self) -> timedelta:
        """Signing period plus the longest certificate: the DSC outlives all it signs."""
        return self.dsc_signing_period + self.max_certificate_validity


@dataclass(frozen=True)
class DscEntry:
    """One document signer of the ring, with its history."""

    label: str
    certificate: CertificateInfo
    activated_at: datetime
    #: When it stopped signing (its last signing time); None while it is the active signer.
    retired_at: datetime | None
    #: Until when verifiers need it: ``notAfter`` while active; after retirement the last
    #: signing time + the longest certificate validity + the rotation grace (capped).
    listed_until: datetime

    @property
    def kid(self) -> bytes:
        return self.certificate.kid

    @property
    def not_before(self) -> datetime:
        return self.certificate.not_before

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_after

    def status(self, now: datetime) -> DscStatus:
        """``active`` (signing), ``retired`` (listed, not signing) or ``expired`` (unlisted)."""
        if self.retired_at is None and now < self.not_after:
            return "active"
        return "retired" if now < self.listed_until else "expired"

    def is_listed(self, now: datetime) -> bool:
        """Whether the trust bundle carries it at ``now``."""
        return self.not_before <= now < self.listed_until


def _aware(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise KeyRingError("BAD_TIME", "times are aware datetimes (UTC)")
    return now.astimezone(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise ValueError("a time is an RFC 3339 string")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _new_label(kind: str, now: datetime) -> str:
    # Unique even in a token that other rings (or earlier runs) share.
    return f"vrs-{kind}-{now:%Y%m%d}-{secrets.token_hex(4)}"


def _pem(der: bytes) -> bytes:
    return load_certificate(der).public_bytes(serialization.Encoding.PEM)


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@dataclass(frozen=True)
class _State:
    store_kind: str
    created_at: datetime
    settings: RingSettings
    csca_label: str
    csca: CertificateInfo
    bundle_label: str
    bundle_public_pem: bytes
    dscs: tuple[DscEntry, ...]

    def to_json(self) -> bytes:
        document = {
            "format": _FORMAT,
            "version": _VERSION,
            "store": self.store_kind,
            "created_at": _rfc3339(self.created_at),
            "settings": {
                "max_certificate_validity_seconds": int(
                    self.settings.max_certificate_validity.total_seconds()
                ),
                "dsc_signing_period_seconds": int(self.settings.dsc_signing_period.total_seconds()),
                "rotation_grace_seconds": int(self.settings.rotation_grace.total_seconds()),
                "csca_validity_seconds": int(self.settings.csca_validity.total_seconds()),
                "certificate_types": sorted(self.settings.certificate_types),
            },
            "csca": {
                "label": self.csca_label,
                "certificate": base64.b64encode(self.csca.der).decode(),
            },
            "trust_bundle_key": {
                "label": self.bundle_label,
                "public_key_pem": self.bundle_public_pem.decode(),
            },
            "dscs": [
                {
                    "label": dsc.label,
                    "kid": base64.b64encode(dsc.kid).decode(),
                    "certificate": base64.b64encode(dsc.certificate.der).decode(),
                    "activated_at": _rfc3339(dsc.activated_at),
                    "retired_at": None if dsc.retired_at is None else _rfc3339(dsc.retired_at),
                    "listed_until": _rfc3339(dsc.listed_until),
                }
                for dsc in self.dscs
            ],
        }
        return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> _State:
        try:
            document = json.loads(data)
            if document.get("format") != _FORMAT or document.get("version") != _VERSION:
                raise ValueError("not a version 1 VRS key ring")
            raw = document["settings"]
            settings = RingSettings(
                max_certificate_validity=timedelta(
                    seconds=int(raw["max_certificate_validity_seconds"])
                ),
                dsc_signing_period=timedelta(seconds=int(raw["dsc_signing_period_seconds"])),
                rotation_grace=timedelta(seconds=int(raw["rotation_grace_seconds"])),
                csca_validity=timedelta(seconds=int(raw["csca_validity_seconds"])),
                certificate_types=frozenset(
                    CertificateType(kind) for kind in raw["certificate_types"]
                ),
            )
            dscs = tuple(
                DscEntry(
                    label=str(item["label"]),
                    certificate=CertificateInfo.from_der(base64.b64decode(item["certificate"])),
                    activated_at=_parse_time(item["activated_at"]),
                    retired_at=None
                    if item["retired_at"] is None
                    else _parse_time(item["retired_at"]),
                    listed_until=_parse_time(item["listed_until"]),
                )
                for item in document["dscs"]
            )
            if sum(1 for dsc in dscs if dsc.retired_at is None) != 1:
                raise ValueError("exactly one DSC must be active")
            return cls(
                store_kind=str(document["store"]),
                created_at=_parse_time(document["created_at"]),
                settings=settings,
                csca_label=str(document["csca"]["label"]),
                csca=CertificateInfo.from_der(base64.b64decode(document["csca"]["certificate"])),
                bundle_label=str(document["trust_bundle_key"]["label"]),
                bundle_public_pem=str(document["trust_bundle_key"]["public_key_pem"]).encode(),
                dscs=dscs,
            )
        except (KeysError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise KeyRingError("RING_CORRUPT", f"{RING_FILE} cannot be read: {exc}") from exc


class KeyRing:
    """The CSCA, the DSCs and the trust-bundle key of one issuer, kept in ``directory``.

    Open one with :meth:`open`, :meth:`init` or :meth:`open_or_init`; :meth:`signer` is the
    active document signer, :meth:`bundle_signer` the trust-bundle signer, :meth:`rotate`
    starts a new DSC, :meth:`listed_dscs` is what the trust bundle carries.
    """

    def __init__(self, directory: Path, store: KeyStore, state: _State, stamp: tuple[int, int]):
        self._directory = directory
        self._store = store
        self._state = state
        self._stamp = stamp
        self._signer: tuple[str, Signer] | None = None
        self._bundle_signer: TrustBundleSigner | None = None

    # -- opening ---------------------------------------------------------------------------

    @staticmethod
    def exists(directory: Path | str) -> bool:
        """Whether ``directory`` holds a key ring."""
        return (Path(directory) / RING_FILE).is_file()

    @classmethod
    def open(cls, directory: Path | str, store: KeyStore) -> KeyRing:
        """The ring in ``directory`` (``RING_MISSING`` if there is none)."""
        path = Path(directory)
        state, stamp = cls._read(path)
        if state.store_kind != store.kind:
            raise KeyRingError(
                "RING_CORRUPT",
                f"the ring's keys are in a {state.store_kind!r} store, not {store.kind!r}",
            )
        return cls(path, store, state, stamp)

    @classmethod
    def init(
        cls,
        directory: Path | str,
        store: KeyStore,
        *,
        now: datetime,
        settings: RingSettings | None = None,
        country: str = "JP",
        organization: str = "VRS",
    ) -> KeyRing:
        """Make a new ring: CSCA, first DSC (active from ``now``), trust-bundle key."""
        now = _aware(now)
        settings = settings or RingSettings()
        path = Path(directory)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _locked(path):
            if cls.exists(path):
                raise KeyRingError("RING_EXISTS", f"{path} already holds a key ring")
            csca_label = _new_label("csca", now)
            csca_key = store.generate(csca_label)
            csca_der = create_csca(
                csca_key,
                not_before=now,
                validity=settings.csca_validity,
                country=country,
                organization=organization,
                common_name=f"{organization} Country Signing CA {now:%Y}",
            )
            csca = CertificateInfo.from_der(csca_der)
            bundle_label = _new_label("trust-bundle", now)
            bundle_key = store.generate(bundle_label)
            bundle_pem = bundle_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            state = _State(
                store_kind=store.kind,
                created_at=now,
                settings=settings,
                csca_label=csca_label,
                csca=csca,
                bundle_label=bundle_label,
                bundle_public_pem=bundle_pem,
                dscs=(),
            )
            state = replace(state, dscs=(cls._new_dsc(store, state, now),))
            _write_atomic(path / CSCA_FILE, _pem(csca_der))
            _write_atomic(path / BUNDLE_KEY_FILE, bundle_pem)
            stamp = cls._write(path, state)
        return cls(path, store, state, stamp)

    @classmethod
    def open_or_init(
        cls,
        directory: Path | str,
        store: KeyStore,
        *,
        now: datetime,
        development: bool,
        settings: RingSettings | None = None,
    ) -> KeyRing:
        """Open the ring; in development mode make one if there is none.

        Production never generates keys on its own: a missing ring is ``RING_MISSING``, and
        an operator runs the initialisation deliberately (``vrs keys init``).
        """
        if cls.exists(directory) or not development:
            return cls.open(directory, store)
        try:
            return cls.init(directory, store, now=now, settings=settings)
        except KeyRingError as exc:
            if exc.code != "RING_EXISTS":
                raise
            return cls.open(directory, store)  # another worker made it first

    # -- reading ---------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def settings(self) -> RingSettings:
        return self._state.settings

    @property
    def csca(self) -> CertificateInfo:
        return self._state.csca

    @property
    def dscs(self) -> tuple[DscEntry, ...]:
        """Every DSC the ring has had, oldest first."""
        return self._state.dscs

    @property
    def active(self) -> DscEntry:
        """The DSC that signs now."""
        return next(dsc for dsc in self._state.dscs if dsc.retired_at is None)

    @property
    def bundle_public_key_pem(self) -> bytes:
        """The trust-bundle key verifiers pin (PEM SubjectPublicKeyInfo)."""
        return self._state.bundle_public_pem

    @property
    def bundle_kid(self) -> bytes:
        key = serialization.load_pem_public_key(self._state.bundle_public_pem)
        if not isinstance(key, ec.EllipticCurvePublicKey):  # pragma: no cover - written here
            raise KeyRingError("RING_CORRUPT", "the trust-bundle key is not a P-256 key")
        return bundle_kid(key)

    def listed_dscs(self, now: datetime) -> list[DscEntry]:
        """The DSCs a trust bundle published at ``now`` carries (active and still-needed)."""
        now = _aware(now)
        return [dsc for dsc in self._state.dscs if dsc.is_listed(now)]

    def rotation_due(self, now: datetime) -> bool:
        """Whether the active DSC can no longer sign a certificate of full validity."""
        now = _aware(now)
        return now + self._state.settings.max_certificate_validity > self.active.not_after

    def signer(self) -> Signer:
        """The active document signer (its private key stays in the store)."""
        active = self.active
        if self._signer is None or self._signer[0] != active.label:
            self._signer = (active.label, self._store.signer(active.label, active.certificate.der))
        return self._signer[1]

    def bundle_signer(self) -> TrustBundleSigner:
        """The trust-bundle signer."""
        if self._bundle_signer is None:
            signer = self._store.bundle_signer(self._state.bundle_label)
            if signer.public_key_pem != self._state.bundle_public_pem:
                raise KeyRingError("RING_CORRUPT", "the store's trust-bundle key is another key")
            self._bundle_signer = signer
        return self._bundle_signer

    def refresh(self) -> bool:
        """Re-read ``keyring.json`` if another process changed it; True when it had."""
        try:
            stat = (self._directory / RING_FILE).stat()
        except FileNotFoundError as exc:
            raise KeyRingError("RING_MISSING", f"{self._directory} holds no key ring") from exc
        if (stat.st_mtime_ns, stat.st_size) == self._stamp:
            return False
        self._state, self._stamp = self._read(self._directory)
        return True

    # -- changing --------------------------------------------------------------------------

    def rotate(self, *, now: datetime) -> DscEntry:
        """Make a new DSC the active signer from ``now``; the old one is retired and listed
        until its last possible certificate has expired. Returns the new DSC."""
        now = _aware(now)
        with _locked(self._directory):
            state, _ = self._read(self._directory)  # the file, not a stale copy, is the truth
            old = next(dsc for dsc in state.dscs if dsc.retired_at is None)
            if now < old.activated_at:
                raise KeyRingError(
                    "BAD_TIME", "rotation time is before the active DSC's activation"
                )
            settings = state.settings
            listed_until = min(
                old.not_after, now + settings.max_certificate_validity + settings.rotation_grace
            )
            retired = replace(old, retired_at=now, listed_until=listed_until)
            new = self._new_dsc(self._store, state, now)
            dscs = (*(retired if dsc is old else dsc for dsc in state.dscs), new)
            self._state = replace(state, dscs=dscs)
            self._stamp = self._write(self._directory, self._state)
        return new

    def withdraw(self, label: str, *, now: datetime) -> DscEntry:
        """Stop listing a retired DSC from ``now`` (its key is compromised): every certificate
        it signed stops verifying. The active DSC cannot be withdrawn — rotate first."""
        now = _aware(now)
        with _locked(self._directory):
            state, _ = self._read(self._directory)
            found = [dsc for dsc in state.dscs if dsc.label == label]
            if not found:
                raise KeyRingError("NO_SUCH_DSC", f"the ring has no DSC {label!r}")
            (old,) = found
            if old.retired_at is None:
                raise KeyRingError("ACTIVE_DSC", "rotate before withdrawing the active DSC")
            withdrawn = replace(old, listed_until=min(old.listed_until, now))
            dscs = tuple(withdrawn if dsc is old else dsc for dsc in state.dscs)
            self._state = replace(state, dscs=dscs)
            self._stamp = self._write(self._directory, self._state)
        return withdrawn

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _new_dsc(store: KeyStore, state: _State, now: datetime) -> DscEntry:
        settings = state.settings
        if now + settings.dsc_validity > state.csca.not_after:
            raise KeyRingError(
                "CSCA_EXPIRING",
                "a new DSC would outlive the CSCA "
                f"(CSCA notAfter {state.csca.not_after:%Y-%m-%d}); make a new key ring",
            )
        label = _new_label("dsc", now)
        key = store.generate(label)
        csca_key = store.load(state.csca_label)
        der = create_dsc(
            key,
            csca_key=csca_key,
            csca_der=state.csca.der,
            not_before=now,
            validity=settings.dsc_validity,
            types=settings.certificate_types,
            common_name=f"VRS Document Signer {now:%Y-%m-%d}",
        )
        info = CertificateInfo.from_der(der)
        return DscEntry(
            label=label,
            certificate=info,
            activated_at=info.not_before,
            retired_at=None,
            listed_until=info.not_after,
        )

    @staticmethod
    def _read(directory: Path) -> tuple[_State, tuple[int, int]]:
        path = directory / RING_FILE
        try:
            with open(path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                data = handle.read()
        except FileNotFoundError as exc:
            raise KeyRingError(
                "RING_MISSING", f"{directory} holds no key ring (run `vrs keys init`)"
            ) from exc
        return _State.from_json(data), (stat.st_mtime_ns, stat.st_size)

    @staticmethod
    def _write(directory: Path, state: _State) -> tuple[int, int]:
        for dsc in state.dscs:
            target = directory / f"{dsc.label}.pem"
            if not target.exists():
                _write_atomic(target, _pem(dsc.certificate.der))
        _write_atomic(directory / RING_FILE, state.to_json())
        stat = (directory / RING_FILE).stat()
        return stat.st_mtime_ns, stat.st_size

    def __repr__(self) -> str:
        return f"KeyRing({str(self._directory)!r}, active={self.active.label!r})"


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the ring's directory across processes (``fcntl.flock``)."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise KeyRingError("RING_LOCKED", "another process is changing the key ring") from exc
        yield
    finally:
        os.close(fd)
