"""Residents sign in with a (development) My Number card: real signatures, real HTTP."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from tests.conftest import NOW, Clock, World
from tests.vrs.card_support import HANAKO, TARO, add_card_holder, card_for, sign_in
from vrs.app import create_app
from vrs.cli import main
from vrs.db.models import AuditLog, ResidentSession
from vrs.devcard import DevCard, DevIssuer, dev_issuer, make_card
from vrs.domain.identity import b64u_encode, encode_holder
from vrs.domain.resident_auth import AuthPolicy, authenticate_session
from vrs.settings import Settings


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _answer(client: TestClient, card: DevCard) -> dict[str, str]:
    return card.answer(client.post("/v1/auth/challenge").json()["challenge"])


def test_a_registered_resident_signs_in_and_the_token_is_stored_hashed(
    client: TestClient, world: World, settings: Settings
) -> None:
    add_card_holder(world, "R1", TARO)
    card = card_for(settings.data_dir)

    challenge = client.post("/v1/auth/challenge").json()
    assert len(base64.urlsafe_b64decode(challenge["challenge"] + "=")) == 32
    answer = client.post("/v1/auth/card", json=card.answer(challenge["challenge"]))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token"].startswith("vrsr_")
    assert body["expires_at"] == "2023-06-01T00:15:00Z"
    with world.session() as s:
        rows = s.execute(select(ResidentSession)).scalars().all()
        assert len(rows) == 1
        assert body["token"] not in {rows[0].token_hash, rows[0].my_number_hmac}
        principal = authenticate_session(s, body["token"], NOW)
        assert principal.role == "resident"
        assert principal.resident_birth_date == date(1980, 4, 15)
        audit = s.execute(
            select(AuditLog).where(AuditLog.action == "resident.sign_in")  # type: ignore[arg-type]
        ).scalar_one()
        assert TARO not in json.dumps(audit.details) + str(audit.subject)


def test_a_challenge_answers_once(client: TestClient, world: World, settings: Settings) -> None:
    add_card_holder(world, "R1", TARO)
    answer = _answer(client, card_for(settings.data_dir))
    assert client.post("/v1/auth/card", json=answer).status_code == 200

    replay = client.post("/v1/auth/card", json=answer)

    assert replay.status_code == 401
    assert replay.json()["code"] == "CHALLENGE_INVALID"


def test_an_expired_challenge_or_session_is_refused(
    client: TestClient, world: World, settings: Settings, clock: Clock
) -> None:
    add_card_holder(world, "R1", TARO)
    card = card_for(settings.data_dir)
    answer = _answer(client, card)
    clock.now = NOW + timedelta(minutes=2, seconds=1)
    late = client.post("/v1/auth/card", json=answer)
    assert (late.status_code, late.json()["code"]) == (401, "CHALLENGE_INVALID")

    headers = sign_in(client, card)
    clock.now += timedelta(minutes=16)
    with world.session() as s, pytest.raises(Exception, match="expired"):
        authenticate_session(s, headers["Authorization"].split()[1], clock.now)


def test_a_card_of_another_issuer_or_a_forged_holder_is_not_trusted(
    client: TestClient, world: World, settings: Settings, tmp_path: Path
) -> None:
    add_card_holder(world, "R1", TARO)
    card_for(settings.data_dir)  # the trusted development issuer exists
    stranger = card_for(tmp_path / "elsewhere")
    refused = client.post("/v1/auth/card", json=_answer(client, stranger))
    assert (refused.status_code, refused.json()["code"]) == (401, "CARD_NOT_TRUSTED")

    # Genuine card, holder data changed to another person's number: the issuer did not sign it.
    genuine = card_for(settings.data_dir)
    forged = json.loads(genuine.holder)
    forged["my_number"] = HANAKO
    answer = _answer(client, genuine)
    answer["holder"] = _b64u(encode_holder(forged))
    refused = client.post("/v1/auth/card", json=answer)
    assert (refused.status_code, refused.json()["code"]) == (401, "CARD_NOT_TRUSTED")


def test_a_challenge_signed_by_another_key_is_refused(
    client: TestClient, world: World, settings: Settings
) -> None:
    add_card_holder(world, "R1", TARO)
    card = card_for(settings.data_dir)
    answer = _answer(client, card)
    other_key = ec.generate_private_key(ec.SECP256R1())
    answer["signature"] = _b64u(other_key.sign(b"anything", ec.ECDSA(hashes.SHA256())))

    refused = client.post("/v1/auth/card", json=answer)

    assert (refused.status_code, refused.json()["code"]) == (401, "BAD_SIGNATURE")


def test_an_unregistered_number_or_another_birth_date_finds_no_resident(
    client: TestClient, world: World, settings: Settings
) -> None:
    add_card_holder(world, "R1", TARO, birth_date=date(1980, 4, 15))
    for card in (
        card_for(settings.data_dir, HANAKO),
        card_for(settings.data_dir, TARO, birth_date=date(1980, 4, 16)),
    ):
        refused = client.post("/v1/auth/card", json=_answer(client, card))
        assert (refused.status_code, refused.json()["code"]) == (403, "RESIDENT_NOT_FOUND")


def test_an_expired_card_is_refused(client: TestClient, world: World, settings: Settings) -> None:
    add_card_holder(world, "R1", TARO)
    issuer = dev_issuer(settings.data_dir, production=False, now=NOW)
    old = make_card(
        issuer,
        my_number=TARO,
        name="山田 太郎",
        birth_date=date(1980, 4, 15),
        now=NOW - timedelta(days=400),
        validity=timedelta(days=365),
    )
    refused = client.post("/v1/auth/card", json=_answer(client, old))
    assert (refused.status_code, refused.json()["code"]) == (401, "CARD_EXPIRED")


def test_failures_are_rate_limited_per_card(
    client: TestClient, world: World, settings: Settings, clock: Clock
) -> None:
    add_card_holder(world, "R1", TARO)
    card = card_for(settings.data_dir)
    other_key = ec.generate_private_key(ec.SECP256R1())
    for _ in range(AuthPolicy().card_failures):
        answer = _answer(client, card)
        answer["signature"] = _b64u(other_key.sign(b"x", ec.ECDSA(hashes.SHA256())))
        assert client.post("/v1/auth/card", json=answer).json()["code"] == "BAD_SIGNATURE"

    # Now even the right answer from this card is refused for the window ...
    limited = client.post("/v1/auth/card", json=_answer(client, card))
    assert (limited.status_code, limited.json()["code"]) == (429, "SIGN_IN_RATE_LIMITED")
    assert int(limited.headers["retry-after"]) > 0
    # ... while another genuine card from the same address still signs in.
    add_card_holder(world, "R2", HANAKO)
    sign_in(client, card_for(settings.data_dir, HANAKO))

    clock.now = NOW + AuthPolicy().window + timedelta(seconds=1)
    sign_in(client, card)


def test_failures_are_rate_limited_per_client_address(
    client: TestClient, world: World, settings: Settings
) -> None:
    add_card_holder(world, "R1", TARO)
    card_for(settings.data_dir)
    for _ in range(AuthPolicy().address_failures):
        garbage = {"challenge": "AAAA", "holder": "x", "issuer_signature": "y", "signature": "z"}
        assert client.post("/v1/auth/card", json=garbage).status_code == 401

    for refused in (
        client.post("/v1/auth/challenge"),
        client.post(
            "/v1/auth/card",
            json={"challenge": "A", "holder": "", "issuer_signature": "", "signature": ""},
        ),
    ):
        assert (refused.status_code, refused.json()["code"]) == (429, "SIGN_IN_RATE_LIMITED")


def _issuer_signed(issuer: DevIssuer, holder: bytes, card: DevCard) -> DevCard:
    signature = issuer.private_key.sign(holder, ec.ECDSA(hashes.SHA256()))
    return DevCard(holder=holder, issuer_signature=signature, private_key=card.private_key)


@pytest.mark.parametrize(
    "holder",
    [
        b"[" * 3000 + b"]" * 3000,
        b"\xff\xfe not utf-8",
        b'{"format": "vrs-card-holder", "version": 1}',
        b"null",
        encode_holder({"format": "vrs-card-holder", "version": 1, "my_number": "123456789012"}),
    ],
    ids=["deep", "binary", "incomplete", "null", "bad-check-digit"],
)
def test_hostile_holder_data_even_signed_by_the_issuer_is_refused_cleanly(
    client: TestClient, world: World, settings: Settings, holder: bytes
) -> None:
    card = card_for(settings.data_dir)
    issuer = dev_issuer(settings.data_dir, production=False, now=NOW)
    hostile = _issuer_signed(issuer, holder, card)
    refused = client.post("/v1/auth/card", json=_answer(client, hostile))
    assert (refused.status_code, refused.json()["code"]) == (401, "CARD_MALFORMED")


@pytest.mark.parametrize(
    "body",
    [
        {"challenge": "A" * 101, "holder": "", "issuer_signature": "", "signature": ""},
        {"challenge": "AAAA", "holder": "A" * 9000, "issuer_signature": "", "signature": ""},
        {"challenge": "AAAA", "holder": "", "issuer_signature": "", "signature": "", "extra": 1},
        {"challenge": 5, "holder": None},
        [],
    ],
)
def test_malformed_bodies_are_422(
    client: TestClient, world: World, settings: Settings, body: object
) -> None:
    card_for(settings.data_dir)
    refused = client.post("/v1/auth/card", json=body)
    assert (refused.status_code, refused.json()["code"]) == (422, "INVALID_REQUEST")


def test_garbled_fields_are_401_with_their_code(
    client: TestClient, world: World, settings: Settings
) -> None:
    card = card_for(settings.data_dir)
    answer = _answer(client, card)
    answer["holder"] = "!!!not base64!!!"
    refused = client.post("/v1/auth/card", json=answer)
    assert (refused.status_code, refused.json()["code"]) == (401, "CARD_MALFORMED")
    bad = client.post(
        "/v1/auth/card",
        json={**card.answer(b64u_encode(b"x" * 32)), "challenge": "@@@"},
    )
    assert (bad.status_code, bad.json()["code"]) == (401, "BAD_CHALLENGE")


def test_production_without_a_card_issuer_answers_503(
    engine: Engine, tmp_path: Path, clock: Clock
) -> None:
    settings = Settings(
        database_url="sqlite://", data_dir=tmp_path, env="production", my_number_hmac_key=b"k" * 40
    )
    card_for(tmp_path)  # a development issuer on disk is not trusted in production
    app = create_app(settings, engine=engine, clock=clock, cache_ttl=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = _answer(client, card_for(tmp_path))
        refused = client.post("/v1/auth/card", json=answer)
    assert (refused.status_code, refused.json()["code"]) == (503, "CARD_ISSUER_NOT_CONFIGURED")


def test_the_card_file_round_trips(settings: Settings, tmp_path: Path) -> None:
    card = card_for(settings.data_dir)
    card.save(tmp_path / "card.json")
    assert (tmp_path / "card.json").stat().st_mode & 0o077 == 0
    again = DevCard.load(tmp_path / "card.json")
    assert again.holder == card.holder
    assert again.answer(b64u_encode(b"c" * 32))["holder"] == b64u_encode(card.holder)


def test_vrs_dev_make_card_writes_a_card_the_service_trusts(
    client: TestClient,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clock: Clock,
) -> None:
    monkeypatch.setenv("VRS_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("VRS_ENV", raising=False)
    out = settings.data_dir / "taro.json"
    args = ["dev", "make-card", "--my-number", TARO, "--name", "山田 太郎"]
    assert main([*args, "--birth-date", "1980-04-15", str(out)]) == 0
    assert TARO not in capsys.readouterr().err
    add_card_holder(world, "R1", TARO)
    clock.now = datetime.now(UTC)  # the command made the card at the real time
    sign_in(client, DevCard.load(out))

    assert main([*args, "--birth-date", "1980-02-30", str(out)]) == 2
    assert "BAD_BIRTH_DATE" in capsys.readouterr().err
    bad_number = ["dev", "make-card", "--my-number", "123456789012", "--name", "x"]
    assert main([*bad_number, "--birth-date", "1980-04-15", str(out)]) == 2
    assert "BAD_MY_NUMBER" in capsys.readouterr().err
    monkeypatch.setenv("VRS_ENV", "production")
    monkeypatch.setenv("VRS_MY_NUMBER_HMAC_KEY", "p" * 40)
    assert main([*args, "--birth-date", "1980-04-15", str(out)]) == 2
    assert "DEVELOPMENT_ONLY" in capsys.readouterr().err
