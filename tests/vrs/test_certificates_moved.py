"""A resident who moved: doses in two municipalities, one person by the My Number hash."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from certs import wire
from tests.conftest import NOW, World
from tests.vrs.card_support import TARO, add_card_holder, card_for, sign_in
from tests.vrs.conftest import post_dose
from tests.vrs.dose_support import add_lots, coupon_number
from tests.vrs.test_certificates import decode_hc1
from vrs.db.models import Certificate, CertificateDoseRecord, QualityFlag
from vrs.domain.auth import SYSTEM
from vrs.domain.certificates import revoke_for_dose_records
from vrs.settings import Settings

SHINJUKU, CHIYODA = "131041", "131016"


def test_doses_count_across_municipalities_and_each_window_certifies_its_own(
    client: TestClient, world: World, settings: Settings
) -> None:
    add_lots(world)
    add_card_holder(world, "S1", TARO, municipality=SHINJUKU, coupon_number=coupon_number(5))
    add_card_holder(world, "C1", TARO, municipality=CHIYODA, coupon_number=coupon_number(6))
    first = post_dose(client, world, 5, 1, "2023-04-01", municipality=SHINJUKU)
    post_dose(client, world, 6, 2, "2023-04-22", municipality=CHIYODA)
    # Dose 2 on a coupon of its own municipality is flagged until someone checks it.
    with world.session() as s:
        for flag in s.execute(select(QualityFlag)).scalars():
            flag.resolved_at = NOW
        s.commit()
    resident = sign_in(client, card_for(settings.data_dir, TARO))

    answer = client.post("/v1/certificates", json={"kind": "domestic"}, headers=resident)
    assert answer.status_code == 201, answer.text
    issued = answer.json()
    _, claims = decode_hc1(issued["hc1"])
    (v,) = claims[wire.CWT_HCERT][wire.HCERT_EU_DCC]["v"]
    assert (v["dn"], v["sd"], issued["municipality_code"]) == (2, 2, CHIYODA)
    with world.session() as s:
        links = s.execute(select(CertificateDoseRecord)).scalars().all()
    assert sorted(link.municipality_code for link in links) == [CHIYODA, SHINJUKU]

    shinjuku_window = client.post(
        f"/v1/municipalities/{SHINJUKU}/residents/S1/certificates",
        json={"kind": "domestic"},
        headers=world.headers("other_municipality"),
    )
    assert shinjuku_window.status_code == 201, shinjuku_window.text
    assert shinjuku_window.json()["dose_number"] == 1
    chiyoda_for_dose_1 = client.post(
        f"/v1/municipalities/{CHIYODA}/residents/C1/certificates",
        json={"kind": "domestic", "dose": 1},
        headers=world.headers("municipality"),
    )
    assert (chiyoda_for_dose_1.status_code, chiyoda_for_dose_1.json()["code"]) == (
        403,
        "DOSE_OF_OTHER_MUNICIPALITY",
    )

    # Correcting dose 1 in Shinjuku revokes both certificates, Chiyoda's included.
    with world.session() as s:
        count = revoke_for_dose_records(
            s,
            municipality_code=SHINJUKU,
            dose_record_ids=[uuid.UUID(first)],
            reason="dose 1 corrected",
            actor=SYSTEM,
            now=NOW,
        )
        s.commit()
        statuses = {c.municipality_code: c.status for c in s.execute(select(Certificate)).scalars()}
    assert count == 2
    assert statuses == {CHIYODA: "revoked", SHINJUKU: "revoked"}
