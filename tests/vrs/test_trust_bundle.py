"""The published trust bundle, checked by the project's own offline verifier.

A resident's certificate, read back from its QR image with zxing-cpp, verifies against the
bundle; a revoked certificate appears in the next bundle; a rotated key keeps old certificates
verifiable.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlmodel import Session

import verifier
from certs import wire
from tests.conftest import NOW, PG_URL, Clock, World
from tests.scratch_db import scratch_database_url
from vrs.cli import main
from vrs.db.engine import make_engine
from vrs.db.models import AuditLog, CertificateDoseRecord
from vrs.domain.auth import SYSTEM
from vrs.domain.certificates import revoke_for_dose_records
from vrs.domain.keyring import rotate_keys
from vrs.settings import Settings

LATER = NOW + timedelta(days=1)


def bundle(client: TestClient) -> tuple[verifier.TrustStore, dict[str, Any], str]:
    answer = client.get("/v1/trust/bundle")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/cose"
    key = client.get("/v1/trust/bundle-key")
    assert key.status_code == 200 and key.text.startswith("-----BEGIN PUBLIC KEY-----")
    store = verifier.load_trust_bundle(answer.content, key.content)
    payload = json.loads(wire.parse_sign1(answer.content).payload)
    return store, payload, answer.headers["etag"]


def scanned(client: TestClient, issued: dict[str, Any], headers: dict[str, str]) -> str:
    png = client.get(issued["qr_png"], headers=headers).content
    found = zxingcpp.read_barcode(Image.open(io.BytesIO(png)))
    assert found is not None
    return str(found.text)


def test_a_certificate_read_from_its_qr_verifies_with_the_published_bundle(
    client: TestClient,
    world: World,
    taro: dict[str, str],
    clock: Clock,
) -> None:
    issued = client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro).json()
    text = scanned(client, issued, taro)
    store, payload, _ = bundle(client)

    for mode in ("venue", "border:DE"):
        result = verifier.verify(text, trust=store, now=LATER, mode=mode)
        assert result.status is verifier.Status.VALID, (mode, result.code, result.checks)
    assert payload["sequence"] == 1 and payload["issuer"] == "JP"
    assert set(payload["rules"]) == {"venue", "border:DE"}
    assert "EU/1/20/1528" in payload["value_sets"]["vaccines-covid-19-names"]["valueSetValues"]
    assert [d["kid"] for d in payload["dscs"]] == [
        base64.b64encode(bytes.fromhex(issued["kid"])).decode()
    ]
    # Too early for the venue rule (14 days after the dose): the rules are really applied.
    early = verifier.verify(
        text, trust=store, now=NOW.replace(day=1) - timedelta(days=40), mode="venue"
    )
    assert early.status is not verifier.Status.VALID


def test_revocation_appears_in_the_next_bundle_and_the_etag_changes(
    client: TestClient,
    world: World,
    taro: dict[str, str],
    clock: Clock,
) -> None:
    issued = client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro).json()
    text = scanned(client, issued, taro)
    _, first, etag = bundle(client)
    assert first["revocations"]["SIGNATURE"] == []
    unchanged = client.get("/v1/trust/bundle", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert client.get("/v1/trust/bundle").headers["etag"] == etag  # cached, same bytes

    clock.now = NOW + timedelta(hours=1)
    with world.session() as s:
        link = s.execute(select(CertificateDoseRecord)).scalars().first()
        assert link is not None
        revoke_for_dose_records(
            s,
            municipality_code="131016",
            dose_record_ids=[link.dose_record_id],
            reason="dose date corrected",
            actor=SYSTEM,
            now=clock.now,
        )
        s.commit()

    changed = client.get("/v1/trust/bundle", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    store, second, _ = bundle(client)
    assert second["sequence"] == 2
    sign1 = wire.parse_sign1(wire.zlib_decompress(wire.b45decode(wire.hc1_strip(text))))
    expected = base64.b64encode(wire.signature_hash(sign1.signature)).decode()
    assert second["revocations"]["SIGNATURE"] == [expected]
    result = verifier.verify(text, trust=store, now=LATER, mode="venue")
    assert (result.status, result.code) == (verifier.Status.INVALID, verifier.Code.REVOKED)


def test_after_rotation_old_and_new_certificates_verify(
    client: TestClient,
    world: World,
    taro: dict[str, str],
    clock: Clock,
    settings: Settings,
) -> None:
    old = client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro).json()
    clock.now = NOW + timedelta(minutes=5)
    with world.session() as s:
        retired, new = rotate_keys(s, settings=settings, actor=SYSTEM, now=clock.now)
        s.commit()
        audit = s.execute(
            select(AuditLog).where(AuditLog.action == "keys.rotate")  # type: ignore[arg-type]
        ).scalar_one()
    assert audit.subject == new.label and retired.kid.hex() == old["kid"]

    answer = client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro)
    assert answer.status_code == 201, answer.text
    fresh = answer.json()
    assert fresh["kid"] == new.kid.hex() != old["kid"]
    store, payload, _ = bundle(client)
    assert len(payload["dscs"]) == 2
    for issued in (old, fresh):
        result = verifier.verify(issued["hc1"], trust=store, now=LATER, mode="venue")
        assert result.status is verifier.Status.VALID, (result.code, result.checks)


def test_the_bundle_needs_no_credential_and_refuses_nothing_else(
    client: TestClient, world: World
) -> None:
    first = client.get("/v1/trust/bundle")
    assert first.status_code == 200
    assert client.get("/v1/trust/bundle", headers={"If-None-Match": "*"}).status_code == 304
    odd = client.get("/v1/trust/bundle", headers={"If-None-Match": '"' + "0" * 64 + '", W/"x"'})
    assert odd.status_code == 200 and odd.content == first.content


def test_vrs_keys_and_trust_export_from_the_command_line(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with scratch_database_url(backend, PG_URL, tmp_path) as url:
        monkeypatch.setenv("VRS_DATABASE_URL", url)
        monkeypatch.setenv("VRS_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("VRS_ENV", "production")
        monkeypatch.setenv("VRS_MY_NUMBER_HMAC_KEY", "m" * 40)
        monkeypatch.setenv("VRS_KEY_PASSPHRASE", "a production passphrase of some length")
        assert main(["db", "upgrade"]) == 0
        # Production makes no keys on its own: exporting before `keys init` is refused.
        assert main(["trust", "export", str(tmp_path / "early.cose")]) == 2
        assert "KEYS_NOT_INITIALISED" in capsys.readouterr().err

        assert main(["keys", "init"]) == 0
        assert main(["keys", "init"]) == 2
        assert "RING_EXISTS" in capsys.readouterr().err
        assert main(["keys", "rotate"]) == 0
        assert main(["keys", "list"]) == 0
        listing = capsys.readouterr().out
        assert "active" in listing and "retired" in listing

        out = tmp_path / "bundle.cose"
        assert main(["trust", "export", str(out)]) == 0
        pinned = (tmp_path / "keys" / "trust-bundle-key.pem").read_bytes()
        store = verifier.load_trust_bundle(out.read_bytes(), pinned)
        assert len(store.signers) == 2  # the rotated-out DSC and the new one

        monkeypatch.setenv("VRS_KEY_PASSPHRASE", "another passphrase, not the right one")
        assert main(["keys", "rotate"]) == 2
        engine = make_engine(url, pool_size=1)
        try:
            with Session(engine) as s:
                actions = s.execute(select(AuditLog.action)).scalars().all()  # type: ignore[call-overload]
        finally:
            engine.dispose()
        assert actions.count("keys.init") == 1 and actions.count("keys.rotate") == 1
        assert "keys.list" in actions
