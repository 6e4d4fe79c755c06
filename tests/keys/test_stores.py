"""Key stores: encrypted PKCS#8 files and a PKCS#11 token (SoftHSM2); the private key stays put."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from keys import (
    DEVELOPMENT_PASSPHRASE,
    FileKeyStore,
    KeyStore,
    KeyStoreError,
    Pkcs11KeyStore,
    SigningKey,
    create_csca,
    create_dsc,
    file_store_directory,
    kid_of,
    open_key_store,
    passphrase_from_environment,
    ring_directory,
)
from tests.keys.conftest import SoftHsm

PASSPHRASE = b"a-long-test-passphrase-of-32-chars"
NOW = datetime(2026, 4, 1, tzinfo=UTC)


def _verify(key: SigningKey, data: bytes) -> None:
    signature = key.sign(data)
    assert len(signature) == 64
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    key.public_key().verify(der, data, ec.ECDSA(hashes.SHA256()))


def _exercise(store: KeyStore) -> None:
    """What every store must do, the same way."""
    assert not store.exists("dsc-a")
    key = store.generate("dsc-a")
    assert store.exists("dsc-a")
    _verify(key, b"to be signed")
    _verify(store.load("dsc-a"), b"again")
    with pytest.raises(KeyStoreError) as taken:
        store.generate("dsc-a")
    assert taken.value.code == "KEY_EXISTS"
    with pytest.raises(KeyStoreError) as missing:
        store.load("dsc-b")
    assert missing.value.code == "KEY_NOT_FOUND"
    for bad in ["", "UPPER", "../escape", "a" * 65, "space here", "dsc-a\n"]:
        with pytest.raises(KeyStoreError) as caught:
            store.load(bad)
        assert caught.value.code == "BAD_LABEL"
    # A CSCA and a DSC signed through the store, then a document signer from it.
    csca_key = store.generate("csca-a")
    csca = create_csca(csca_key, not_before=NOW)
    dsc = create_dsc(key, csca_key=csca_key, csca_der=csca, not_before=NOW, validity=timedelta(1))
    signer = store.signer("dsc-a", dsc)
    assert signer.kid == kid_of(dsc)
    assert signer.algorithm == "ES256"
    with pytest.raises(Exception) as mismatch:
        store.signer("csca-a", dsc)
    assert getattr(mismatch.value, "code", None) == "KEY_MISMATCH"
    bundle = store.bundle_signer("csca-a")
    assert bundle.public_key_pem.startswith(b"-----BEGIN PUBLIC KEY-----")


# --- encrypted files ------------------------------------------------------------------------


def test_the_file_store_does_what_a_store_does(tmp_path: Path) -> None:
    _exercise(FileKeyStore(tmp_path / "keys", PASSPHRASE))


def test_key_files_are_encrypted_pkcs8_readable_by_openssl_with_the_passphrase(
    tmp_path: Path,
) -> None:
    store = FileKeyStore(tmp_path, PASSPHRASE)
    key = store.generate("dsc-1")
    path = tmp_path / "dsc-1.key.pem"
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = serialization.load_pem_private_key(pem, password=PASSPHRASE)
    assert loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    openssl = shutil.which("openssl")
    if openssl is None:
        return  # the openssl command is not installed; the cryptography load above still ran
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [openssl, "pkey", "-in", str(path), "-passin", "env:PASS", "-noout"],
        env={**os.environ, "PASS": PASSPHRASE.decode()},
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_a_wrong_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    FileKeyStore(tmp_path, PASSPHRASE).generate("dsc-1")
    with pytest.raises(KeyStoreError) as caught:
        FileKeyStore(tmp_path, b"another-passphrase-entirely").load("dsc-1")
    assert caught.value.code == "BAD_PASSPHRASE"
    assert PASSPHRASE.decode() not in str(caught.value)


def test_every_wrong_passphrase_is_the_same_error(tmp_path: Path) -> None:
    # About one wrong passphrase in 256 decrypts with valid padding and fails later, as a bad
    # DER; 600 tries meet such a one with a probability of about 90 %.
    FileKeyStore(tmp_path, PASSPHRASE).generate("dsc-1")
    codes = set()
    for attempt in range(600):
        with pytest.raises(KeyStoreError) as caught:
            FileKeyStore(tmp_path, f"wrong-passphrase-number-{attempt}".encode()).load("dsc-1")
        codes.add(caught.value.code)
    assert codes == {"BAD_PASSPHRASE"}


@pytest.mark.parametrize(
    "content", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "dsc-1.key.pem").write_bytes(content)
    with pytest.raises(KeyStoreError) as caught:
        FileKeyStore(tmp_path, PASSPHRASE).load("dsc-1")
    assert caught.value.code == "KEY_FILE_INVALID"


def test_a_key_of_another_curve_is_refused(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE),
    )
    (tmp_path / "dsc-1.key.pem").write_bytes(other)
    with pytest.raises(KeyStoreError) as caught:
        FileKeyStore(tmp_path, PASSPHRASE).load("dsc-1")
    assert caught.value.code == "KEY_FILE_INVALID"


def test_the_store_lists_its_labels(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "new", PASSPHRASE)
    assert store.labels() == []
    store.generate("b")
    store.generate("a")
    assert store.labels() == ["a", "b"]


def test_a_file_store_needs_a_passphrase(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError) as caught:
        FileKeyStore(tmp_path, b"")
    assert caught.value.code == "PASSPHRASE_MISSING"


def test_production_needs_a_strong_passphrase_from_the_environment() -> None:
    strong = "x" * 24
    assert passphrase_from_environment({"VRS_KEY_PASSPHRASE": strong}, development=False) == (
        strong.encode()
    )
    for env, code in [
        ({}, "PASSPHRASE_MISSING"),
        ({"VRS_KEY_PASSPHRASE": "short"}, "PASSPHRASE_WEAK"),
        ({"VRS_KEY_PASSPHRASE": DEVELOPMENT_PASSPHRASE.decode()}, "PASSPHRASE_WEAK"),
    ]:
        with pytest.raises(KeyStoreError) as caught:
            passphrase_from_environment(env, development=False)
        assert caught.value.code == code


def test_development_falls_back_to_the_public_development_passphrase() -> None:
    assert passphrase_from_environment({}, development=True) == DEVELOPMENT_PASSPHRASE
    assert passphrase_from_environment({"VRS_KEY_PASSPHRASE": "dev"}, development=True) == b"dev"


# --- PKCS#11 (SoftHSM2) ---------------------------------------------------------------------


def test_the_pkcs11_store_does_what_a_store_does(softhsm: SoftHsm) -> None:
    with softhsm.store() as store:
        for label in ("dsc-a", "csca-a"):
            assert label not in store.labels()
        _exercise(store)
        assert {"dsc-a", "csca-a"} <= set(store.labels())


def test_token_keys_are_sensitive_and_never_leave_the_token(softhsm: SoftHsm) -> None:
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import AttributeSensitive

    with softhsm.store() as store:
        store.generate("sealed")
    # Look at the token through a session of our own, as an attacker with the PIN would.
    import pkcs11

    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.token_label)
    with token.open(user_pin=softhsm.pin) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="sealed")
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        with pytest.raises(AttributeSensitive):
            private[Attribute.VALUE]


def test_keys_survive_a_new_session(softhsm: SoftHsm) -> None:
    with softhsm.store() as store:
        public = store.generate("persistent").public_key()
    with softhsm.store() as again:
        assert again.load("persistent").public_key() == public
        _verify(again.load("persistent"), b"after reopening")


def test_a_wrong_pin_is_a_clear_error(softhsm: SoftHsm) -> None:
    with pytest.raises(KeyStoreError) as caught:
        Pkcs11KeyStore(softhsm.module, softhsm.token_label, "000000")
    assert caught.value.code == "HSM_LOGIN_FAILED"


def test_an_unknown_token_is_a_clear_error(softhsm: SoftHsm) -> None:
    with pytest.raises(KeyStoreError) as caught:
        Pkcs11KeyStore(softhsm.module, "no-such-token", softhsm.pin)
    assert caught.value.code == "HSM_TOKEN_NOT_FOUND"


def test_a_missing_module_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError) as caught:
        Pkcs11KeyStore(tmp_path / "libnothing.so", "x", "1234")
    assert caught.value.code == "HSM_MODULE_MISSING"
    assert "softhsm2" in caught.value.message


def test_a_closed_store_refuses_work(softhsm: SoftHsm) -> None:
    store = softhsm.store()
    store.close()
    with pytest.raises(KeyStoreError) as caught:
        store.load("anything")
    assert caught.value.code == "STORE_CLOSED"


# --- choosing the store from the environment -----------------------------------------------


def test_the_environment_chooses_a_file_store_under_the_data_dir(tmp_path: Path) -> None:
    store = open_key_store({"VRS_KEY_PASSPHRASE": "x" * 24}, data_dir=tmp_path, development=False)
    assert isinstance(store, FileKeyStore)
    assert store.directory == file_store_directory(tmp_path) == tmp_path / "keys" / "private"
    assert ring_directory(tmp_path) == tmp_path / "keys"


def test_the_environment_chooses_the_pkcs11_store(softhsm: SoftHsm, tmp_path: Path) -> None:
    environ = {
        "VRS_KEY_STORE": "pkcs11",
        "VRS_PKCS11_MODULE": str(softhsm.module),
        "VRS_PKCS11_TOKEN": softhsm.token_label,
        "VRS_PKCS11_PIN": softhsm.pin,
    }
    store = open_key_store(environ, data_dir=tmp_path, development=False)
    assert isinstance(store, Pkcs11KeyStore)
    store.close()


@pytest.mark.parametrize(
    ("environ", "code"),
    [
        ({"VRS_KEY_STORE": "cloud"}, "BAD_STORE_KIND"),
        ({"VRS_KEY_STORE": "pkcs11"}, "HSM_MODULE_MISSING"),
        ({"VRS_KEY_STORE": "pkcs11", "VRS_PKCS11_MODULE": "/x.so"}, "HSM_LOGIN_FAILED"),
        ({}, "PASSPHRASE_MISSING"),
    ],
)
def test_an_incomplete_environment_is_refused(
    environ: dict[str, str], code: str, tmp_path: Path
) -> None:
    with pytest.raises(KeyStoreError) as caught:
        open_key_store(environ, data_dir=tmp_path, development=False)
    assert caught.value.code == code
