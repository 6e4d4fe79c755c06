"""Key stores: where private keys live. One small protocol, two stores.

- :class:`FileKeyStore` — one encrypted PKCS#8 PEM file per key (PBES2: PBKDF2-HMAC-SHA256 and
  AES-256-CBC, readable by ``openssl pkey``), the passphrase from the environment
  (:func:`passphrase_from_environment`).
- :class:`keys.Pkcs11KeyStore` — keys generated inside a PKCS#11 token (an HSM; SoftHSM2 in
  tests), marked sensitive and not extractable: they sign inside the token.

Both hand out :class:`keys.SigningKey` handles, and :meth:`KeyStore.signer` turns a handle and
its DSC into a :class:`keys.Signer`. No store returns private key bytes.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from keys.errors import KeyStoreError
from keys.signer import DocumentSigner, Signer, SigningKey, TrustBundleSigner

#: Environment variable holding the file store's passphrase.
PASSPHRASE_VARIABLE = "VRS_KEY_PASSPHRASE"  # noqa: S105 - the name, not the secret
#: Shortest passphrase production accepts. The PKCS#8 files use the PBKDF2 work factor
#: ``cryptography`` writes (2,048 rounds), so the passphrase itself must carry the strength:
#: a random 20+ character secret from the operator's secret store.
MIN_PASSPHRASE_LENGTH = 20
#: Development mode's passphrase when none is set. It is public, so production refuses it.
DEVELOPMENT_PASSPHRASE = b"vrs-development-only-key-passphrase"

_LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_KEY_SUFFIX = ".key.pem"


def check_label(label: object) -> str:
    """A key label: 1–64 of ``a-z 0-9 . _ -``, starting with a letter or digit."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise KeyStoreError(
            "BAD_LABEL", "a key label is 1-64 characters of a-z, 0-9, '.', '_', '-'"
        )
    return label


@runtime_checkable
class KeyStore(Protocol):
    """Creates and finds P-256 signing keys by label."""

    @property
    def kind(self) -> str:
        """``"file"`` or ``"pkcs11"`` (recorded in the key ring)."""
        ...

    def generate(self, label: str) -> SigningKey:
        """Make a new key under ``label`` (``KEY_EXISTS`` if the label is taken)."""
        ...

    def load(self, label: str) -> SigningKey:
        """The key under ``label`` (``KEY_NOT_FOUND`` if there is none)."""
        ...

    def exists(self, label: str) -> bool:
        """Whether a key is stored under ``label``."""
        ...

    def signer(self, label: str, certificate_der: bytes) -> Signer:
        """The document signer made of the key ``label`` and its DSC."""
        ...

    def bundle_signer(self, label: str) -> TrustBundleSigner:
        """The trust-bundle signer made of the key ``label``."""
        ...


def raw_signature(der_signature: bytes) -> bytes:
    """A DER ECDSA signature as the raw COSE ``r || s`` (32 + 32 bytes for P-256)."""
    r, s = decode_dss_signature(der_signature)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class _StoreSigners:
    """The two :class:`KeyStore` conveniences shared by every store."""

    def load(self, label: str) -> SigningKey:
        raise NotImplementedError  # pragma: no cover - every store defines it

    def signer(self, label: str, certificate_der: bytes) -> Signer:
        return DocumentSigner(self.load(label), certificate_der)

    def bundle_signer(self, label: str) -> TrustBundleSigner:
        return TrustBundleSigner(self.load(label))


def passphrase_from_environment(
    environ: Mapping[str, str] | None = None,
    *,
    development: bool,
    variable: str = PASSPHRASE_VARIABLE,
) -> bytes:
    """The file store's passphrase from ``VRS_KEY_PASSPHRASE``.

    Production: it must be set, at least :data:`MIN_PASSPHRASE_LENGTH` characters, and not the
    development one. Development: unset means :data:`DEVELOPMENT_PASSPHRASE`.
    """
    env = os.environ if environ is None else environ
    value = env.get(variable, "")
    if not value:
        if development:
            return DEVELOPMENT_PASSPHRASE
        raise KeyStoreError("PASSPHRASE_MISSING", f"set {variable} to the key files' passphrase")
    encoded = value.encode("utf-8")
    if not development and (
        len(value) < MIN_PASSPHRASE_LENGTH or encoded == DEVELOPMENT_PASSPHRASE
    ):
        raise KeyStoreError(
            "PASSPHRASE_WEAK",
            f"{variable} must be a secret of at least {MIN_PASSPHRASE_LENGTH} characters "
            "(the development passphrase is refused)",
        )
    return encoded


class _FileKey:
    """A key decrypted from its file into this process; signs, never serialises."""

    __slots__ = ("_key", "_label", "_public")

    def __init__(self, label: str, key: ec.EllipticCurvePrivateKey) -> None:
        self._label = label
        self._key = key
        self._public = key.public_key()

    @property
    def label(self) -> str:
        return self._label

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return raw_signature(self._key.sign(data, ec.ECDSA(hashes.SHA256())))

    def __repr__(self) -> str:
        return f"<file key {self._label!r}>"


class FileKeyStore(_StoreSigners):
    """Keys as encrypted PKCS#8 PEM files ``<label>.key.pem`` (mode 0600) in one directory."""

    def __init__(self, directory: Path | str, passphrase: bytes) -> None:
        if not isinstance(passphrase, bytes) or not passphrase:
            raise KeyStoreError("PASSPHRASE_MISSING", "the file store needs a passphrase")
        self._directory = Path(directory)
        self._passphrase = passphrase
        self._cache: dict[str, _FileKey] = {}
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        return "file"

    @property
    def directory(self) -> Path:
        return self._directory

    def _path(self, label: str) -> Path:
        return self._directory / f"{check_label(label)}{_KEY_SUFFIX}"

    def exists(self, label: str) -> bool:
        return self._path(label).is_file()

    def generate(self, label: str) -> SigningKey:
        path = self._path(label)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise KeyStoreError("KEY_EXISTS", f"a key named {label!r} exists") from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        handle_key = _FileKey(label, key)
        with self._lock:
            self._cache[label] = handle_key
        return handle_key

    def load(self, label: str) -> SigningKey:
        path = self._path(label)
        with self._lock:
            cached = self._cache.get(label)
        if cached is not None:
            return cached
        try:
            pem = path.read_bytes()
        except FileNotFoundError as exc:
            raise KeyStoreError("KEY_NOT_FOUND", f"no key named {label!r}") from exc
        try:
            key = serialization.load_pem_private_key(pem, password=self._passphrase)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # A wrong passphrase usually fails the padding check ("Bad decrypt"), but about one
            # time in 256 it decrypts to garbage with valid padding and fails as a bad DER
            # instead. So an encrypted key that will not open is a passphrase problem (or a
            # damaged file) whatever cryptography's message says; neither holds key material.
            encrypted = pem.lstrip().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
            if encrypted or "decrypt" in str(exc).lower():
                raise KeyStoreError(
                    "BAD_PASSPHRASE",
                    f"cannot open key {label!r}: wrong passphrase, or the key file is damaged",
                ) from exc
            raise KeyStoreError("KEY_FILE_INVALID", f"cannot read key {label!r}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise KeyStoreError("KEY_FILE_INVALID", f"key {label!r} is not a P-256 key")
        handle_key = _FileKey(label, key)
        with self._lock:
            self._cache[label] = handle_key
        return handle_key

    def labels(self) -> list[str]:
        """The labels of the keys in the directory, sorted."""
        if not self._directory.is_dir():
            return []
        return sorted(
            path.name[: -len(_KEY_SUFFIX)]
            for path in self._directory.iterdir()
            if path.name.endswith(_KEY_SUFFIX)
        )

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self._directory)!r})"
