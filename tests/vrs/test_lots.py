"""Known lots: loaded by the operator, then the lot rules stop flagging records that use them."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests.conftest import NOW, World
from vrs.cli import main
from vrs.db.models import AuditLog, VaccineLot
from vrs.domain.auth import SYSTEM
from vrs.domain.checkdigits import make_damm_coupon_number
from vrs.domain.errors import NotFound, Unprocessable
from vrs.domain.lots import add_lot, load_lots_csv
from vrs.domain.reference import COMIRNATY, SPIKEVAX


def post(client: TestClient, world: World, serial: int, lot: str) -> dict[str, object]:
    answer = client.post(
        "/v1/dose-records",
        headers=world.headers("site"),
        json={
            "client_record_id": str(uuid.uuid4()),
            "coupon": f"11{world.municipality}{make_damm_coupon_number(serial)}",
            "vaccinated_on": "2023-05-01",
            "product": COMIRNATY,
            "lot": lot,
            "site_code": world.site,
            "source": "qr",
        },
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    return body


def flag_codes(record: dict[str, object]) -> set[str]:
    flags = record["flags"]
    assert isinstance(flags, list)
    return {f["rule_code"] for f in flags}


def test_a_registered_lot_is_not_flagged_and_an_unknown_one_is(
    client: TestClient, world: World
) -> None:
    with world.session() as s:
        add_lot(
            s,
            actor=SYSTEM,
            lot_number="FK1234",
            product_code=COMIRNATY,
            expires_on="2024-12-31",
            now=NOW,
        )
        s.commit()
    assert flag_codes(post(client, world, 1, "FK1234")) == set()
    assert flag_codes(post(client, world, 2, "ZZ9999")) == {"LOT_UNKNOWN"}


def test_a_lot_of_another_product_and_an_expired_lot_are_flagged(
    client: TestClient, world: World
) -> None:
    with world.session() as s:
        add_lot(
            s,
            actor=SYSTEM,
            lot_number="MOD001",
            product_code=SPIKEVAX,
            expires_on="2024-12-31",
            now=NOW,
        )
        add_lot(
            s,
            actor=SYSTEM,
            lot_number="OLD001",
            product_code=COMIRNATY,
            expires_on="2023-04-30",
            now=NOW,
        )
        s.commit()
    assert flag_codes(post(client, world, 3, "MOD001")) == {"LOT_PRODUCT_MISMATCH"}
    assert flag_codes(post(client, world, 4, "OLD001")) == {"LOT_EXPIRED"}


@pytest.mark.parametrize(
    ("lot", "product", "expires", "gtin", "code"),
    [
        ("", COMIRNATY, "2024-01-01", None, "BAD_LOT"),
        ("FK 12", COMIRNATY, "2024-01-01", None, "BAD_LOT"),
        ("FK1", "EU/9/99/9999", "2024-01-01", None, "UNKNOWN_PRODUCT"),
        ("FK1", COMIRNATY, "31/12/2024", None, "BAD_DATE"),
        ("FK1", COMIRNATY, "2024-01-01", "4901234", "BAD_GTIN"),
    ],
)
def test_bad_lots_are_refused_with_a_code(
    world: World, lot: str, product: str, expires: str, gtin: str | None, code: str
) -> None:
    with world.session() as s, pytest.raises((Unprocessable, NotFound)) as caught:
        add_lot(
            s,
            actor=SYSTEM,
            lot_number=lot,
            product_code=product,
            expires_on=expires,
            gtin=gtin,
            now=NOW,
        )
    assert caught.value.code == code


def test_a_lot_file_is_all_or_nothing(world: World) -> None:
    good = "lot_number,product,expires_on,gtin\nFK1,EU/1/20/1528,2024-01-01,04987654321098\n"
    with world.session() as s, pytest.raises(Unprocessable) as caught:
        load_lots_csv(s, actor=SYSTEM, text=good + "FK2,EU/1/20/1528,never\n", now=NOW)
    assert caught.value.code == "INVALID_FILE"
    assert caught.value.details["errors"] == [
        {"line": 3, "code": "BAD_DATE", "message": "expiry 'never' is not YYYY-MM-DD"}
    ]
    with world.session() as s:
        assert s.get(VaccineLot, ("FK1", COMIRNATY)) is None
        assert load_lots_csv(s, actor=SYSTEM, text=good, now=NOW) == 1
        s.commit()
        lot = s.get(VaccineLot, ("FK1", COMIRNATY))
        assert lot is not None and lot.gtin == "04987654321098"
        actions = s.exec(select(AuditLog.action)).all()
        assert actions.count("lot.load") == 1


def test_the_cli_adds_and_loads_lots(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VRS_DATABASE_URL", world.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("VRS_DATA_DIR", str(tmp_path))
    assert main(["lots", "add", "FK1234", COMIRNATY, "2024-12-31", "--gtin", "04987654321098"]) == 0
    assert "FK1234" in capsys.readouterr().out
    assert main(["lots", "add", "FK1234", "EU/9/99/9999", "2024-12-31"]) == 2
    assert "UNKNOWN_PRODUCT" in capsys.readouterr().err
    file = tmp_path / "lots.csv"
    file.write_text("FA1,EU/1/20/1507,2025-01-31\nFA2,EU/1/20/1507,2025-02-28\n", encoding="utf-8")
    assert main(["lots", "load", str(file)]) == 0
    assert "2 lots loaded" in capsys.readouterr().out
    with Session(world.engine) as s:
        assert s.get(VaccineLot, ("FA2", SPIKEVAX)) is not None
