"""The two ways of issuing a resident's certificate agree on PostgreSQL.

``fast`` is the app as configured by default (the asynchronous psycopg path of
:mod:`vrs.domain.issuance_pg`); ``portable`` is a second app on the same database with
``certificate_fast_path=False`` (the SQLAlchemy path that SQLite always takes). The same
request, with the same session token, goes through each in turn; the answers must match
(status and body; for a certificate everything but what is random by design: the UVCI, and
the signed text and the links that carry it), and so must what was stored (the certificate
row, its dose-record links, and the audit entry down to the JSON text of its details). Each
step also checks what it is meant to show, so two paths broken alike still fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update

from certs import wire
from tests.conftest import NOW, Clock, World
from tests.vrs.card_support import HANAKO, TARO, add_card_holder, card_for, sign_in
from tests.vrs.conftest import HANAKO_COUPON, TARO_COUPON, post_dose
from tests.vrs.dose_support import add_lots, body, coupon_number
from vrs.app import create_app
from vrs.db.models import Certificate, DoseRecord, QualityFlag
from vrs.settings import Settings

#: Parts of a certificate answer that differ between two issues by design.
RANDOM = frozenset({"uvci", "hc1", "qr_png", "qr_svg", "pdf"})
#: Certificate columns derived from the UVCI or the signature.
SIGNED = frozenset({"uvci", "hc1", "signature_hash", "uci_hash", "countrycode_uci_hash"})


@pytest.fixture
def portable(
    backend: str, settings: Settings, engine: Engine, clock: Clock
) -> Iterator[TestClient]:
    if backend != "postgresql":
        pytest.skip("SQLite has one issuing path only; the fast path needs PostgreSQL")
    app = create_app(settings, engine=engine, clock=clock, cache_ttl=0, certificate_fast_path=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def stored(world: World, uvci: str) -> dict[str, Any]:
    """What one issue wrote, without what is random by design."""
    with world.session() as s:
        row = s.execute(select(Certificate).where(Certificate.uvci == uvci)).scalar_one()  # type: ignore[arg-type]
        certificate = {k: v for k, v in row.model_dump().items() if k not in SIGNED}
        links = s.execute(
            text(
                "SELECT municipality_code, dose_record_id, certificate_municipality_code,"
                " dose_record_version FROM certificate_dose_record WHERE uvci = :uvci"
                " ORDER BY dose_record_id"
            ),
            {"uvci": uvci},
        ).all()
        audits = s.execute(
            text(
                "SELECT at, actor_credential_id, actor_role, action, municipality_code, count,"
                " purpose, details::text FROM audit_log WHERE subject = :uvci"
            ),
            {"uvci": uvci},
        ).all()
    return {"certificate": certificate, "links": links, "audit": audits}


def hcert(hc1: str) -> dict[str, Any]:
    sign1 = wire.parse_sign1(wire.zlib_decompress(wire.b45decode(wire.hc1_strip(hc1))))
    claims = wire.cbor_loads(sign1.payload)
    payload = dict(claims[wire.CWT_HCERT][wire.HCERT_EU_DCC])
    payload["v"] = [{k: v for k, v in dose.items() if k != "ci"} for dose in payload["v"]]
    return payload


def both(
    fast: TestClient,
    portable: TestClient,
    world: World,
    headers: dict[str, str],
    payload: dict[str, Any],
) -> Any:
    """The request through each path; the answers and the stored rows agree."""
    a = fast.post("/v1/certificates", json=payload, headers=headers)
    b = portable.post("/v1/certificates", json=payload, headers=headers)
    assert a.status_code == b.status_code, (a.text, b.text)
    if a.status_code != 201:
        assert a.json() == b.json()
        return a
    one, other = a.json(), b.json()
    assert one["uvci"] != other["uvci"]
    assert {k: v for k, v in one.items() if k not in RANDOM} == {
        k: v for k, v in other.items() if k not in RANDOM
    }
    assert hcert(one["hc1"]) == hcert(other["hc1"])
    first, second = stored(world, one["uvci"]), stored(world, other["uvci"])
    assert first == second
    assert len(first["audit"]) == 1 and first["links"]
    return a


def test_the_fast_app_issues_through_its_pool_and_the_portable_app_has_none(
    client: TestClient, portable: TestClient, world: World, settings: Settings
) -> None:
    fast = client.app.state.certifier  # type: ignore[attr-defined]
    assert fast.pool is not None and not fast._lazy.opened
    assert portable.app.state.certifier.pool is None  # type: ignore[attr-defined]
    add_lots(world)
    add_card_holder(world, "R1", TARO)
    taro = sign_in(client, card_for(settings.data_dir, TARO))
    assert client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro).json()[
        "code"
    ] == ("NO_DOSES")
    assert fast._lazy.opened and fast.pool.get_stats()["requests_num"] >= 2  # session + issue


def test_issues_and_refusals_agree(
    client: TestClient, portable: TestClient, world: World, settings: Settings
) -> None:
    add_lots(world)
    add_card_holder(world, "R1", TARO, coupon_number=coupon_number(TARO_COUPON))
    post_dose(client, world, TARO_COUPON, 1, "2023-04-01")
    post_dose(client, world, TARO_COUPON, 2, "2023-04-22")
    taro = sign_in(client, card_for(settings.data_dir, TARO))

    latest = both(client, portable, world, taro, {"kind": "domestic"})
    assert latest.json()["dose_number"] == 2
    passport = {"family": "Yamada", "given": "Taro"}
    first = both(
        client, portable, world, taro, {"kind": "overseas", "dose": 1, "passport_name": passport}
    )
    assert first.json()["dose_number"] == 1
    refusals: list[tuple[dict[str, Any], int, str | None]] = [
        ({"kind": "domestic", "dose": 3}, 404, "DOSE_NOT_FOUND"),
        ({"kind": "overseas"}, 422, "PASSPORT_NAME_REQUIRED"),
        ({"kind": "overseas", "passport_name": {"family": "山田"}}, 422, None),
        ({"kind": "domestic", "dose": 10}, 422, None),
        ({"kind": "elsewhere"}, 422, None),
    ]
    for payload, status, code in refusals:
        answer = both(client, portable, world, taro, payload)
        assert answer.status_code == status
        assert code is None or answer.json()["code"] == code

    staff = both(client, portable, world, world.headers("municipality"), {"kind": "domestic"})
    assert (staff.status_code, staff.json()["code"]) == (403, "ROLE_NOT_ALLOWED")
    unknown = both(
        client, portable, world, {"Authorization": "Bearer vrsr_nope"}, {"kind": "domestic"}
    )
    assert (unknown.status_code, unknown.json()["code"]) == (401, "SESSION_EXPIRED")
    hostile = {"Authorization": "Bearer vrsr_" + "x" * 300}
    assert (
        both(client, portable, world, hostile, {"kind": "domestic"}).json()["code"] == "BAD_TOKEN"
    )

    with world.session() as s:  # dose 2 back on the coupon, not matched to Taro yet
        s.execute(
            update(DoseRecord)
            .where(DoseRecord.dose_number == 2)  # type: ignore[arg-type]
            .values(status="pending", resident_local_id=None)
        )
        s.commit()
    pending = both(client, portable, world, taro, {"kind": "domestic"})
    assert (pending.status_code, pending.json()["code"]) == (409, "RECORDS_PENDING")
    assert pending.json()["doses"] == [2]

    with world.session() as s:
        s.execute(update(DoseRecord).values(status="recorded", resident_local_id="R1"))
        s.commit()
    assert both(client, portable, world, taro, {"kind": "domestic"}).status_code == 201

    client_clock = client.app.state.clock  # type: ignore[attr-defined]
    client_clock.now = NOW + timedelta(hours=1)  # both apps share the clock
    expired = both(client, portable, world, taro, {"kind": "domestic"})
    assert (expired.status_code, expired.json()["code"]) == (401, "SESSION_EXPIRED")


def test_unsettled_records_are_refused_alike(
    client: TestClient, portable: TestClient, world: World, settings: Settings
) -> None:
    add_lots(world)
    add_card_holder(world, "R2", HANAKO, coupon_number=coupon_number(HANAKO_COUPON))
    hanako = sign_in(client, card_for(settings.data_dir, HANAKO))
    none = both(client, portable, world, hanako, {"kind": "domestic"})
    assert none.json()["code"] == "NO_DOSES"

    post_dose(client, world, HANAKO_COUPON, 1, "2023-04-01")
    post_dose(client, world, HANAKO_COUPON, 2, "2023-04-10")  # 9 days: interval flag
    flagged = both(client, portable, world, hanako, {"kind": "domestic"})
    assert (flagged.status_code, flagged.json()["code"]) == (409, "RECORDS_FLAGGED")
    assert flagged.json()["rules"]

    conflicting = body(HANAKO_COUPON, 1, vaccinated_on="2023-04-02")
    answer = client.post("/v1/dose-records", json=conflicting, headers=world.headers("site"))
    assert answer.status_code == 409
    with world.session() as s:
        for flag in s.execute(select(QualityFlag)).scalars():
            if flag.severity == "flag":
                flag.resolved_at = NOW
        s.commit()
    refused = both(client, portable, world, hanako, {"kind": "domestic"})
    assert (refused.status_code, refused.json()["code"]) == (409, "RECORDS_CONFLICTING")
    assert refused.json()["rules"]

    with world.session() as s:
        for flag in s.execute(select(QualityFlag)).scalars():
            flag.resolved_at = NOW
        s.commit()
    assert both(client, portable, world, hanako, {"kind": "domestic"}).status_code == 201
