"""Downloading the trust bundle: the verifier's only networked module.

:func:`sync` fetches ``GET <url>`` with ``If-None-Match`` (the cached ETag), verifies a new bundle
against the pinned key *before* keeping it, refuses a bundle older than the cached one
(``sequence`` going down), and stores it atomically in a cache folder that :func:`load_cached`
reads offline. The HTTP client is an injectable :class:`Transport`; :class:`UrllibTransport`
(standard library) is the default.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from verifier.errors import SyncError, TrustBundleError
from verifier.trust import MAX_BUNDLE_BYTES, TrustStore, load_pinned_key, load_trust_bundle

__all__ = [
    "BUNDLE_FILE",
    "ETAG_FILE",
    "PIN_FILE",
    "Response",
    "SyncResult",
    "Transport",
    "UrllibTransport",
    "load_cached",
    "sync",
]

BUNDLE_FILE = "trust-bundle.cose"
ETAG_FILE = "trust-bundle.etag"
PIN_FILE = "trust-bundle-key.pem"
_SHA256_ETAG = re.compile(r'^"([0-9a-f]{64})"$')


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


class Transport(Protocol):
    """Performs one HTTP GET. Raise :class:`SyncError` for a network failure."""

    def get(self, url: str, headers: Mapping[str, str]) -> Response: ...


class UrllibTransport:
    """HTTP(S) GET with the standard library; the body is capped at the bundle size limit."""

    def __init__(self, timeout: float = 20.0) -> None:
        self.timeout = timeout

    def get(self, url: str, headers: Mapping[str, str]) -> Response:
        if not url.startswith(("https://", "http://")):
            raise SyncError("SYNC_URL", "the trust bundle URL must be http(s)")
        request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 - scheme checked
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                body = answer.read(MAX_BUNDLE_BYTES + 1)
                names = {k.lower(): v for k, v in answer.headers.items()}
                return Response(answer.status, names, body)
        except urllib.error.HTTPError as exc:
            names = {k.lower(): v for k, v in exc.headers.items()} if exc.headers else {}
            return Response(exc.code, names, b"")
        except (urllib.error.URLError, OSError) as exc:
            raise SyncError("SYNC_NETWORK", f"cannot reach {url}: {exc}") from None


@dataclass(frozen=True, slots=True)
class SyncResult:
    """``changed`` is False when the server said 304 (the cached bundle is current)."""

    changed: bool
    store: TrustStore
    etag: str | None


def _write_atomic(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _pin(pinned_key: ec.EllipticCurvePublicKey | bytes) -> ec.EllipticCurvePublicKey:
    return load_pinned_key(pinned_key) if isinstance(pinned_key, bytes) else pinned_key


def load_cached(directory: Path, pinned_key: ec.EllipticCurvePublicKey | bytes) -> TrustStore:
    """The cached bundle, verified again against the pin (the file may have been altered)."""
    path = directory / BUNDLE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SyncError("NO_BUNDLE", f"no trust bundle in {directory}: run sync first") from None
    return load_trust_bundle(data, _pin(pinned_key))


def sync(
    url: str,
    *,
    pinned_key: ec.EllipticCurvePublicKey | bytes,
    directory: Path,
    transport: Transport | None = None,
) -> SyncResult:
    """Fetch the bundle if it changed, verify it, and keep it in ``directory``."""
    key = _pin(pinned_key)
    directory.mkdir(parents=True, exist_ok=True)
    etag_path, bundle_path = directory / ETAG_FILE, directory / BUNDLE_FILE
    cached: TrustStore | None = None
    headers = {"Accept": "application/cose"}
    if bundle_path.exists():
        try:
            cached = load_cached(directory, key)
        except TrustBundleError:
            cached = None  # a damaged cache is replaced, never trusted
        if cached is not None and etag_path.exists():
            headers["If-None-Match"] = etag_path.read_text(encoding="ascii").strip()
    response = (transport or UrllibTransport()).get(url, headers)
    if response.status == 304 and cached is not None:
        return SyncResult(False, cached, headers.get("If-None-Match"))
    if response.status != 200:
        raise SyncError("SYNC_HTTP_STATUS", f"{url} answered HTTP {response.status}")
    if len(response.body) > MAX_BUNDLE_BYTES:
        raise SyncError("SYNC_TOO_LARGE", "the trust bundle is larger than allowed")
    etag = response.headers.get("etag")
    expected = _SHA256_ETAG.match(etag or "")
    if expected and hashlib.sha256(response.body).hexdigest() != expected.group(1):
        raise SyncError("SYNC_ETAG_MISMATCH", "the body does not match its ETag (damaged?)")
    store = load_trust_bundle(response.body, key)  # raises TrustBundleError: nothing is kept
    if cached is not None and (store.sequence or 0) < (cached.sequence or 0):
        raise SyncError(
            "BUNDLE_ROLLBACK", f"bundle sequence {store.sequence} is older than {cached.sequence}"
        )
    _write_atomic(bundle_path, response.body)
    if etag:
        _write_atomic(etag_path, etag.encode("ascii", errors="replace"))
    else:
        etag_path.unlink(missing_ok=True)
    return SyncResult(True, store, etag)
