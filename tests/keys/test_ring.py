"""The key ring: init, rotation (old DSCs stay listed while their certificates live), listing."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from certs.testing import make_certificate
from keys import (
    FileKeyStore,
    KeyRing,
    KeyRingError,
    RingSettings,
    kid_of,
)
from tests.certs.oracles import assert_certificate_is_sound
from tests.keys.conftest import SoftHsm

PASSPHRASE = b"a-long-test-passphrase-of-32-chars"
T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
GRACE = timedelta(hours=1)


def _store(tmp_path: Path) -> FileKeyStore:
    return FileKeyStore(tmp_path / "private", PASSPHRASE)


def _ring(tmp_path: Path) -> KeyRing:
    return KeyRing.init(tmp_path / "ring", _store(tmp_path), now=T0)


def test_init_makes_a_csca_a_first_dsc_and_a_bundle_key(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    (dsc,) = ring.dscs
    assert ring.active == dsc
    assert dsc.status(T0) == "active"
    assert dsc.not_before == T0
    assert dsc.not_after == T0 + 2 * YEAR  # signing period + the longest certificate
    chain = x509.load_der_x509_certificate(dsc.certificate.der)
    chain.verify_directly_issued_by(x509.load_der_x509_certificate(ring.csca.der))
    files = {path.name for path in (tmp_path / "ring").iterdir()}
    assert {"keyring.json", "csca.pem", "trust-bundle-key.pem", f"{dsc.label}.pem"} <= files
    assert (tmp_path / "ring" / "trust-bundle-key.pem").read_bytes() == ring.bundle_public_key_pem
    assert ring.bundle_signer().kid == ring.bundle_kid
    assert ring.signer().kid == kid_of(dsc.certificate.der) == dsc.kid
    # The private keys are in the store, never in the ring's directory.
    assert not any(b"PRIVATE KEY" in p.read_bytes() for p in (tmp_path / "ring").glob("*.pem"))


def test_a_certificate_signed_by_the_ring_verifies(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    issued = make_certificate(signer=ring.signer(), now=T0 + timedelta(days=3))
    assert_certificate_is_sound(issued, ring.active.certificate.der)


def test_rotation_keeps_the_old_dsc_listed_until_its_last_certificate_expires(
    tmp_path: Path,
) -> None:
    ring = _ring(tmp_path)
    old = ring.active
    rotated_at = T0 + timedelta(days=200)
    last_old = make_certificate(signer=ring.signer(), now=rotated_at - timedelta(minutes=1))
    new = ring.rotate(now=rotated_at)
    assert ring.active == new != old
    retired = ring.dscs[0]
    assert retired.retired_at == rotated_at
    assert retired.listed_until == rotated_at + YEAR + GRACE
    assert retired.status(rotated_at) == "retired"
    assert ring.signer().kid == new.kid
    # The old DSC's certificates still verify, and the bundle still lists it while they live.
    assert_certificate_is_sound(last_old, retired.certificate.der)
    listed = [dsc.kid for dsc in ring.listed_dscs(last_old.expires_at - timedelta(seconds=1))]
    assert listed == [old.kid, new.kid]
    after = rotated_at + YEAR + GRACE
    assert [dsc.kid for dsc in ring.listed_dscs(after)] == [new.kid]
    assert retired.status(after) == "expired"
    # A fresh look at the directory sees the same ring.
    again = KeyRing.open(tmp_path / "ring", _store(tmp_path))
    assert again.dscs == ring.dscs
    assert again.signer().kid == new.kid


def test_a_late_rotation_lists_the_old_dsc_no_longer_than_its_validity(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    rotated_at = T0 + timedelta(days=600)
    ring.rotate(now=rotated_at)
    assert ring.dscs[0].listed_until == ring.dscs[0].not_after


def test_rotation_is_due_when_a_full_year_no_longer_fits(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    assert not ring.rotation_due(T0 + YEAR)
    assert ring.rotation_due(T0 + YEAR + timedelta(seconds=1))
    late = make_certificate(signer=ring.signer(), now=T0 + timedelta(days=500))
    assert late.expires_at == ring.active.not_after


def test_rotation_cannot_go_back_in_time(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    with pytest.raises(KeyRingError) as caught:
        ring.rotate(now=T0 - timedelta(seconds=1))
    assert caught.value.code == "BAD_TIME"


def test_a_dsc_that_would_outlive_the_csca_is_refused(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    with pytest.raises(KeyRingError) as caught:
        ring.rotate(now=T0 + timedelta(days=3652) - YEAR)
    assert caught.value.code == "CSCA_EXPIRING"


def test_init_refuses_a_second_ring(tmp_path: Path) -> None:
    _ring(tmp_path)
    with pytest.raises(KeyRingError) as caught:
        _ring(tmp_path)
    assert caught.value.code == "RING_EXISTS"


def test_production_never_generates_keys_but_development_does(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError) as caught:
        KeyRing.open_or_init(tmp_path / "ring", _store(tmp_path), now=T0, development=False)
    assert caught.value.code == "RING_MISSING"
    assert _store(tmp_path).labels() == []
    made = KeyRing.open_or_init(tmp_path / "ring", _store(tmp_path), now=T0, development=True)
    opened = KeyRing.open_or_init(tmp_path / "ring", _store(tmp_path), now=T0, development=False)
    assert opened.active == made.active


def test_a_worker_sees_another_process_rotate(tmp_path: Path) -> None:
    worker = _ring(tmp_path)
    operator = KeyRing.open(tmp_path / "ring", _store(tmp_path))
    assert not worker.refresh()
    new = operator.rotate(now=T0 + timedelta(days=1))
    assert worker.refresh()
    assert worker.signer().kid == new.kid


def test_a_rotation_while_another_holds_the_lock_is_refused(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    fd = os.open(tmp_path / "ring" / "keyring.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(KeyRingError) as caught:
            ring.rotate(now=T0 + timedelta(days=1))
        assert caught.value.code == "RING_LOCKED"
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "damage",
    [
        lambda doc: "not json",
        lambda doc: json.dumps({**doc, "version": 2}),
        lambda doc: json.dumps({**doc, "dscs": []}),
        lambda doc: json.dumps({**doc, "csca": {"label": "x", "certificate": "AAAA"}}),
        lambda doc: json.dumps({k: v for k, v in doc.items() if k != "settings"}),
    ],
)
def test_a_damaged_ring_file_is_a_clear_error(tmp_path: Path, damage: object) -> None:
    _ring(tmp_path)
    path = tmp_path / "ring" / "keyring.json"
    path.write_text(damage(json.loads(path.read_text())))  # type: ignore[operator]
    with pytest.raises(KeyRingError) as caught:
        KeyRing.open(tmp_path / "ring", _store(tmp_path))
    assert caught.value.code == "RING_CORRUPT"


@pytest.mark.parametrize(
    "settings",
    [
        {"max_certificate_validity": timedelta(0)},
        {"dsc_signing_period": timedelta(days=-1)},
        {"rotation_grace": timedelta(seconds=-1)},
        {"csca_validity": YEAR},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, timedelta]) -> None:
    with pytest.raises(KeyRingError) as caught:
        RingSettings(**settings)
    assert caught.value.code == "BAD_SETTING"


def test_naive_times_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError) as caught:
        KeyRing.init(tmp_path, _store(tmp_path), now=datetime(2026, 1, 1))
    assert caught.value.code == "BAD_TIME"


def test_a_ring_on_an_hsm_initialises_rotates_and_signs(tmp_path: Path, softhsm: SoftHsm) -> None:
    with softhsm.store() as store:
        ring = KeyRing.init(tmp_path / "ring", store, now=T0)
        first = make_certificate(signer=ring.signer(), now=T0 + timedelta(days=1))
        ring.rotate(now=T0 + timedelta(days=2))
        second = make_certificate(signer=ring.signer(), now=T0 + timedelta(days=3))
        assert_certificate_is_sound(first, ring.dscs[0].certificate.der)
        assert_certificate_is_sound(second, ring.dscs[1].certificate.der)
        assert {dsc.label for dsc in ring.dscs} <= set(store.labels())
        with pytest.raises(KeyRingError) as caught:
            KeyRing.open(tmp_path / "ring", _store(tmp_path))
        assert caught.value.code == "RING_CORRUPT"  # the ring's keys are in the token


def test_a_compromised_dsc_is_withdrawn_from_the_listing(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    old = ring.active
    with pytest.raises(KeyRingError) as active:
        ring.withdraw(old.label, now=T0 + timedelta(days=1))
    assert active.value.code == "ACTIVE_DSC"
    ring.rotate(now=T0 + timedelta(days=2))
    withdrawn = ring.withdraw(old.label, now=T0 + timedelta(days=3))
    assert withdrawn.listed_until == T0 + timedelta(days=3)
    assert [dsc.label for dsc in ring.listed_dscs(T0 + timedelta(days=3))] == [ring.active.label]
    assert KeyRing.open(tmp_path / "ring", _store(tmp_path)).dscs[0] == withdrawn
    with pytest.raises(KeyRingError) as missing:
        ring.withdraw("no-such", now=T0 + timedelta(days=3))
    assert missing.value.code == "NO_SUCH_DSC"
