"""A key store inside a PKCS#11 token (a hardware security module; SoftHSM2 in tests).

Keys are generated in the token as P-256 pairs whose private half is ``SENSITIVE`` and not
``EXTRACTABLE``: it never leaves the token. Signing hashes the data here (SHA-256) and asks
the token for a raw ``CKM_ECDSA`` signature over the digest — the mechanism every token has
(SoftHSM2 has no ``CKM_ECDSA_SHA256``); PKCS#11 returns it as ``r || s`` already.

A PKCS#11 session is not safe to share between threads: the store keeps one logged-in
session and serialises its calls with a lock.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.types import PublicKey, SignMixin
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from keys.errors import KeyStoreError
from keys.signer import SigningKey
from keys.stores import _StoreSigners, check_label

#: Where Debian, Ubuntu, Fedora and Homebrew put SoftHSM2's module.
SOFTHSM_MODULE_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)


def find_softhsm_module() -> Path | None:
    """SoftHSM2's PKCS#11 module on this machine, or None (Debian: ``apt-get install softhsm2``)."""
    for candidate in SOFTHSM_MODULE_PATHS:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


class _TokenKey:
    """A private key object in the token; every call goes through the store's session lock."""

    __slots__ = ("_label", "_lock", "_private", "_public")

    def __init__(
        self,
        label: str,
        private: SignMixin,
        public: ec.EllipticCurvePublicKey,
        lock: threading.Lock,
    ) -> None:
        self._label = label
        self._private = private
        self._public = public
        self._lock = lock

    @property
    def label(self) -> str:
        return self._label

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        digest = hashlib.sha256(data).digest()
        try:
            with self._lock:
                signature = self._private.sign(digest, mechanism=Mechanism.ECDSA)
        except p11.PKCS11Error as exc:
            raise KeyStoreError("HSM_ERROR", f"the token refused to sign: {exc!r}") from exc
        return bytes(signature)

    def __repr__(self) -> str:
        return f"<PKCS#11 key {self._label!r}>"


class Pkcs11KeyStore(_StoreSigners):
    """P-256 keys in the PKCS#11 token ``token_label``, reached through ``module`` with ``pin``."""

    def __init__(self, module: Path | str, token_label: str, pin: str) -> None:
        if not pin:
            raise KeyStoreError("HSM_LOGIN_FAILED", "the token's user PIN is required")
        module_path = Path(module)
        if not module_path.is_file():
            raise KeyStoreError(
                "HSM_MODULE_MISSING",
                f"no PKCS#11 module at {module_path} (for SoftHSM2: apt-get install softhsm2)",
            )
        self._lock = threading.Lock()
        try:
            library = pkcs11.lib(str(module_path))
            token = library.get_token(token_label=token_label)
        except p11.NoSuchToken as exc:
            raise KeyStoreError(
                "HSM_TOKEN_NOT_FOUND", f"no token labelled {token_label!r}"
            ) from exc
        except p11.PKCS11Error as exc:
            raise KeyStoreError("HSM_MODULE_MISSING", f"cannot load {module_path}: {exc}") from exc
        try:
            self._session = token.open(user_pin=pin, rw=True)
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange, p11.PinLocked) as exc:
            raise KeyStoreError(
                "HSM_LOGIN_FAILED", f"the token refused the PIN ({type(exc).__name__})"
            ) from exc
        except p11.PKCS11Error as exc:
            raise KeyStoreError("HSM_ERROR", f"cannot open a session: {exc!r}") from exc
        self._token_label = token_label
        self._keys: dict[str, _TokenKey] = {}
        self._closed = False

    @property
    def kind(self) -> str:
        return "pkcs11"

    def _check_open(self) -> None:
        if self._closed:
            raise KeyStoreError("STORE_CLOSED", "the PKCS#11 store was closed")

    def _find(self, object_class: ObjectClass, label: str) -> list[pkcs11.Object]:
        return list(
            self._session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label})
        )

    def exists(self, label: str) -> bool:
        check_label(label)
        self._check_open()
        with self._lock:
            return bool(self._find(ObjectClass.PRIVATE_KEY, label))

    def generate(self, label: str) -> SigningKey:
        check_label(label)
        self._check_open()
        with self._lock:
            if self._find(ObjectClass.PRIVATE_KEY, label):
                raise KeyStoreError("KEY_EXISTS", f"a key named {label!r} exists in the token")
            try:
                parameters = self._session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                    local=True,
                )
                public, private = parameters.generate_keypair(
                    store=True,
                    label=label,
                    public_template={Attribute.VERIFY: True, Attribute.TOKEN: True},
                    private_template={
                        Attribute.SIGN: True,
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: True,
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                    },
                )
                public_key = self._public_key(public)
            except p11.PKCS11Error as exc:
                raise KeyStoreError("HSM_ERROR", f"key generation failed: {exc!r}") from exc
            if not isinstance(private, SignMixin):  # pragma: no cover - token bug
                raise KeyStoreError("HSM_ERROR", f"the new key {label!r} cannot sign")
            key = _TokenKey(label, private, public_key, self._lock)
            self._keys[label] = key
            return key

    def load(self, label: str) -> SigningKey:
        check_label(label)
        self._check_open()
        with self._lock:
            cached = self._keys.get(label)
            if cached is not None:
                return cached
            try:
                privates = self._find(ObjectClass.PRIVATE_KEY, label)
                publics = self._find(ObjectClass.PUBLIC_KEY, label)
                if not privates or not publics:
                    raise KeyStoreError("KEY_NOT_FOUND", f"no key named {label!r} in the token")
                if len(privates) > 1 or len(publics) > 1:
                    raise KeyStoreError(
                        "HSM_ERROR", f"the token holds more than one key named {label!r}"
                    )
                public_key = self._public_key(publics[0])
            except p11.PKCS11Error as exc:
                raise KeyStoreError("HSM_ERROR", f"cannot read key {label!r}: {exc!r}") from exc
            private = privates[0]
            if not isinstance(private, SignMixin):  # pragma: no cover - token bug
                raise KeyStoreError("HSM_ERROR", f"{label!r} cannot sign")
            key = _TokenKey(label, private, public_key, self._lock)
            self._keys[label] = key
            return key

    @staticmethod
    def _public_key(public: object) -> ec.EllipticCurvePublicKey:
        if not isinstance(public, PublicKey):  # pragma: no cover - token bug
            raise KeyStoreError("HSM_ERROR", "the token's public key object is not a key")
        loaded = load_der_public_key(encode_ec_public_key(public))
        if not isinstance(loaded, ec.EllipticCurvePublicKey):  # pragma: no cover - token bug
            raise KeyStoreError("HSM_ERROR", "the token's public key is not an EC key")
        return loaded

    def labels(self) -> list[str]:
        """The labels of the private keys in the token, sorted."""
        self._check_open()
        with self._lock:
            found = self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            return sorted({str(obj[Attribute.LABEL]) for obj in found})

    def close(self) -> None:
        """Log out and close the session (the keys stay in the token)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._keys.clear()
                self._session.close()

    def __enter__(self) -> Pkcs11KeyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore(token={self._token_label!r})"
