"""The certificate path end to end in libraries: key ring → certs.issue → QR PNG → the
verifier, trusting only a trust bundle signed by the pinned key. Rotation keeps old
certificates valid; a revoked signature hash makes one INVALID."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import verifier
from certs import HolderName, Vaccination, issue, qr_png
from certs.trustbundle import BundleDsc, Revocations, bundle_payload, sign_bundle
from keys import FileKeyStore, KeyRing
from verifier import Code, Status
from verifier.testing import sample_rules, sample_value_sets

T0 = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
NAME = HolderName.suggest_from_kana("佐藤", "花子", family_kana="サトウ", given_kana="ハナコ")


def _dose(number: int) -> Vaccination:
    return Vaccination(
        product="EU/1/20/1528",
        manufacturer="ORG-100030215",
        prophylaxis="1119349007",
        dose_number=number,
        series_length=2,
        date=date(2025, 11, 1),
    )


def _bundle(ring: KeyRing, now: datetime, sequence: int, revoked: list[bytes]) -> bytes:
    payload = bundle_payload(
        sequence=sequence,
        issued_at=now,
        valid_until=now + timedelta(days=2),
        dscs=[BundleDsc(dsc.certificate.der) for dsc in ring.listed_dscs(now)],
        cscas=[ring.csca.der],
        value_sets=sample_value_sets(),
        rules=sample_rules(),
        revocations=Revocations(signature=revoked),
    )
    return sign_bundle(payload, ring.bundle_signer())


def _check(png: bytes, bundle: bytes, ring: KeyRing, now: datetime) -> verifier.VerificationResult:
    trust = verifier.load_trust_bundle(bundle, ring.bundle_public_key_pem)
    return verifier.verify(verifier.decode(png), trust=trust, now=now, mode="venue")


def test_issue_rotate_revoke_and_verify_through_the_qr_image(tmp_path: Path) -> None:
    ring = KeyRing.init(
        tmp_path / "keys", FileKeyStore(tmp_path / "keys" / "private", b"x" * 24), now=T0
    )
    first_at = T0 + timedelta(days=1)
    first = issue(NAME, date(1990, 5, 5), _dose(2), signer=ring.signer(), now=first_at)
    first_png = qr_png(first.hc1)

    result = _check(first_png, _bundle(ring, first_at, 1, []), ring, first_at)
    assert result.status is Status.VALID, result
    assert result.holder is not None

    rotated_at = T0 + timedelta(days=30)
    ring.rotate(now=rotated_at)
    second = issue(NAME, date(1990, 5, 5), _dose(3), signer=ring.signer(), now=rotated_at)
    assert second.kid != first.kid
    bundle = _bundle(ring, rotated_at, 2, [])
    assert _check(first_png, bundle, ring, rotated_at).status is Status.VALID
    assert _check(qr_png(second.hc1), bundle, ring, rotated_at).status is Status.VALID

    revoked = _bundle(ring, rotated_at, 3, [first.signature_hash])
    result = _check(first_png, revoked, ring, rotated_at)
    assert result.status is Status.INVALID
    assert result.code is Code.REVOKED
    assert _check(qr_png(second.hc1), revoked, ring, rotated_at).status is Status.VALID


def test_a_bundle_signed_by_another_ring_is_refused(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "private", b"x" * 24)
    ours = KeyRing.init(tmp_path / "ours", store, now=T0)
    theirs = KeyRing.init(tmp_path / "theirs", store, now=T0)
    forged = _bundle(theirs, T0, 1, [])
    try:
        verifier.load_trust_bundle(forged, ours.bundle_public_key_pem)
    except verifier.TrustBundleError:
        return
    raise AssertionError("a bundle signed by another key was accepted")
