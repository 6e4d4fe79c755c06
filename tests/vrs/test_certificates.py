"""Issuing certificates over HTTP: a resident with a development card, and the window.

Real parts throughout: a real key ring (file store), real signatures, QR images read back by
zxing-cpp, and the HC1 text decoded and its signature checked against the signer's DSC.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any
from urllib.parse import quote

import pytest
import zxingcpp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from certs import wire
from tests.conftest import NOW, World
from tests.vrs.card_support import HANAKO, TARO, add_card_holder, card_for, sign_in
from tests.vrs.conftest import HANAKO_COUPON, TARO_COUPON, post_dose
from tests.vrs.dose_support import add_lots, body, coupon_number
from vrs.db.models import AuditLog, Certificate, CertificateDoseRecord, QualityFlag
from vrs.settings import Settings


def decode_hc1(hc1: str) -> tuple[wire.Sign1, dict[Any, Any]]:
    cose = wire.zlib_decompress(wire.b45decode(wire.hc1_strip(hc1)))
    sign1 = wire.parse_sign1(cose)
    return sign1, wire.cbor_loads(sign1.payload)


def verify_with_dsc(sign1: wire.Sign1, dsc_der: bytes) -> None:
    key = x509.load_der_x509_certificate(dsc_der).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(
        wire.es256_raw_to_der(sign1.signature),
        wire.sig_structure(sign1.protected, sign1.payload),
        ec.ECDSA(hashes.SHA256()),
    )


def test_a_resident_gets_a_certificate_whose_qr_decodes_to_the_hc1(
    client: TestClient, world: World, taro: dict[str, str], app: Any
) -> None:
    answer = client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro)

    assert answer.status_code == 201, answer.text
    issued = answer.json()
    assert issued["dose_number"] == 2 and issued["kind"] == "domestic"
    assert issued["hc1"].startswith("HC1:")
    assert issued["expires_at"] == "2024-05-31T00:00:00Z"
    assert issued["uvci"].startswith("URN:UVCI:01:JP:VRS/131016")

    png = client.get(issued["qr_png"], headers=taro)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    found = zxingcpp.read_barcode(Image.open(io.BytesIO(png.content)))
    assert found is not None and found.text == issued["hc1"]
    svg = client.get(issued["qr_svg"], headers=taro)
    assert svg.status_code == 200 and svg.text.lstrip().startswith("<?xml")
    pdf = client.get(issued["pdf"], headers=taro)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert issued["uvci"] in text

    sign1, claims = decode_hc1(issued["hc1"])
    signer = app.state.keys.signer(NOW)
    assert wire.header_kid(sign1) == signer.kid == bytes.fromhex(issued["kid"])
    verify_with_dsc(sign1, signer.certificate_der)
    hcert = claims[wire.CWT_HCERT][wire.HCERT_EU_DCC]
    assert hcert["nam"]["fnt"] == "YAMADA" and hcert["nam"]["gnt"] == "TARO"
    assert hcert["dob"] == "1980-04-15"
    (v,) = hcert["v"]
    assert (v["dn"], v["sd"], v["dt"], v["ci"]) == (2, 2, "2023-04-22", issued["uvci"])
    assert TARO not in issued["hc1"] + str(claims)


def test_the_certificate_row_keeps_hashes_and_the_records_it_was_made_from(
    client: TestClient, world: World, taro: dict[str, str]
) -> None:
    issued = client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro).json()
    sign1, _ = decode_hc1(issued["hc1"])
    with world.session() as s:
        row = s.execute(select(Certificate)).scalar_one()
        links = s.execute(select(CertificateDoseRecord)).scalars().all()
        audit = s.execute(
            select(AuditLog).where(AuditLog.action == "certificate.issue")  # type: ignore[arg-type]
        ).scalar_one()
    assert row.signature_hash == wire.signature_hash(sign1.signature).hex()
    assert row.uci_hash == wire.uci_hash(issued["uvci"]).hex()
    assert (row.channel, row.status, row.municipality_code) == ("self", "active", "131016")
    assert sorted(link.dose_record_version for link in links) == [1, 1]
    assert len(links) == 2
    assert audit.subject == issued["uvci"]


def test_overseas_certificates_carry_the_passport_spelling_and_a_chosen_dose(
    client: TestClient, world: World, taro: dict[str, str]
) -> None:
    missing = client.post("/v1/certificates", json={"kind": "overseas"}, headers=taro)
    assert (missing.status_code, missing.json()["code"]) == (422, "PASSPORT_NAME_REQUIRED")

    answer = client.post(
        "/v1/certificates",
        json={
            "kind": "overseas",
            "dose": 1,
            "passport_name": {"family": "Yamada", "given": "Taro-Jiro"},
        },
        headers=taro,
    )
    assert answer.status_code == 201, answer.text
    _, claims = decode_hc1(answer.json()["hc1"])
    hcert = claims[wire.CWT_HCERT][wire.HCERT_EU_DCC]
    assert hcert["nam"]["gnt"] == "TARO<JIRO"
    assert (hcert["v"][0]["dn"], hcert["v"][0]["sd"]) == (1, 2)

    bad = client.post(
        "/v1/certificates",
        json={"kind": "overseas", "passport_name": {"family": "山田", "given": "x"}},
        headers=taro,
    )
    assert bad.status_code == 422 and bad.json()["code"] != "INTERNAL_ERROR"
    absent = client.post("/v1/certificates", json={"kind": "domestic", "dose": 3}, headers=taro)
    assert (absent.status_code, absent.json()["code"]) == (404, "DOSE_NOT_FOUND")


def test_refusals_name_their_cause(client: TestClient, world: World, settings: Settings) -> None:
    add_lots(world)
    add_card_holder(world, "R2", HANAKO, coupon_number=coupon_number(HANAKO_COUPON))
    hanako = sign_in(client, card_for(settings.data_dir, HANAKO))
    none = client.post("/v1/certificates", json={"kind": "domestic"}, headers=hanako)
    assert (none.status_code, none.json()["code"]) == (409, "NO_DOSES")

    post_dose(client, world, HANAKO_COUPON, 1, "2023-04-01")
    post_dose(client, world, HANAKO_COUPON, 2, "2023-04-10")  # 9 days: interval flag
    flagged = client.post("/v1/certificates", json={"kind": "domestic"}, headers=hanako)
    assert (flagged.status_code, flagged.json()["code"]) == (409, "RECORDS_FLAGGED")
    assert flagged.json()["rules"]

    conflicting = body(HANAKO_COUPON, 1, vaccinated_on="2023-04-02")
    assert (
        client.post("/v1/dose-records", json=conflicting, headers=world.headers("site")).status_code
        == 409
    )
    with world.session() as s:
        for flag in s.execute(select(QualityFlag)).scalars():
            if flag.severity == "flag":
                flag.resolved_at = NOW
        s.commit()
    refused = client.post("/v1/certificates", json={"kind": "domestic"}, headers=hanako)
    assert (refused.status_code, refused.json()["code"]) == (409, "RECORDS_CONFLICTING")


def test_protected_residents_are_served_at_the_window_only(
    client: TestClient, world: World, settings: Settings
) -> None:
    add_lots(world)
    add_card_holder(world, "R3", TARO, coupon_number=coupon_number(TARO_COUPON), protected=True)
    post_dose(client, world, TARO_COUPON, 1, "2023-04-01")
    resident = sign_in(client, card_for(settings.data_dir, TARO))
    refused = client.post("/v1/certificates", json={"kind": "domestic"}, headers=resident)
    assert (refused.status_code, refused.json()["code"]) == (403, "PROTECTED_RESIDENT")

    window = client.post(
        "/v1/municipalities/131016/residents/R3/certificates",
        json={"kind": "domestic"},
        headers=world.headers("municipality"),
    )
    assert window.status_code == 201, window.text
    assert window.json()["dose_number"] == 1
    png = client.get(window.json()["qr_png"], headers=world.headers("municipality"))
    assert png.status_code == 200


def test_tenancy_other_municipality_other_resident_and_roles_are_refused(
    client: TestClient, world: World, taro: dict[str, str], settings: Settings
) -> None:
    issued = client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro).json()
    add_card_holder(world, "R9", HANAKO)
    hanako = sign_in(client, card_for(settings.data_dir, HANAKO))

    other_resident = client.get(issued["qr_png"], headers=hanako)
    assert (other_resident.status_code, other_resident.json()["code"]) == (
        404,
        "CERTIFICATE_NOT_FOUND",
    )
    other_town = client.get(issued["qr_png"], headers=world.headers("other_municipality"))
    assert (other_town.status_code, other_town.json()["code"]) == (403, "OTHER_TENANT")
    site = client.get(issued["qr_svg"], headers=world.headers("site"))
    assert (site.status_code, site.json()["code"]) == (403, "ROLE_NOT_ALLOWED")
    own_town = client.get(issued["qr_png"], headers=world.headers("municipality"))
    assert own_town.status_code == 200

    window = client.post(
        "/v1/municipalities/131016/residents/R1/certificates",
        json={"kind": "domestic"},
        headers=world.headers("other_municipality"),
    )
    assert (window.status_code, window.json()["code"]) == (403, "OTHER_TENANT")
    staff_as_resident = client.post(
        "/v1/certificates", json={"kind": "domestic"}, headers=world.headers("municipality")
    )
    assert (staff_as_resident.status_code, staff_as_resident.json()["code"]) == (
        403,
        "ROLE_NOT_ALLOWED",
    )
    resident_at_window = client.post(
        "/v1/municipalities/131016/residents/R1/certificates",
        json={"kind": "domestic"},
        headers=taro,
    )
    assert resident_at_window.status_code == 403
    anonymous = client.post("/v1/certificates", json={"kind": "domestic"})
    assert anonymous.status_code == 401


def test_a_revoked_certificate_is_no_longer_served(
    client: TestClient, world: World, taro: dict[str, str]
) -> None:
    from vrs.domain.auth import SYSTEM
    from vrs.domain.certificates import revoke_for_dose_records

    issued = client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro).json()
    with world.session() as s:
        link = s.execute(select(CertificateDoseRecord)).scalars().first()
        assert link is not None
        revoke_for_dose_records(
            s,
            municipality_code="131016",
            dose_record_ids=[link.dose_record_id],
            reason="corrected",
            actor=SYSTEM,
            now=NOW,
        )
        s.commit()
    gone = client.get(issued["qr_png"], headers=taro)
    assert (gone.status_code, gone.json()["code"]) == (409, "CERTIFICATE_REVOKED")
    again = client.post("/v1/certificates", json={"kind": "domestic"}, headers=taro)
    assert again.status_code == 201 and again.json()["uvci"] != issued["uvci"]


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "travel"},
        {"kind": "domestic", "dose": 0},
        {"kind": "domestic", "dose": "latest"},
        {"kind": "domestic", "extra": True},
        {"kind": "overseas", "passport_name": {"family": "A" * 101, "given": ""}},
        {"kind": "overseas", "passport_name": "YAMADA"},
        [],
    ],
)
def test_hostile_requests_are_422(
    client: TestClient, world: World, taro: dict[str, str], payload: object
) -> None:
    refused = client.post("/v1/certificates", json=payload, headers=taro)
    assert (refused.status_code, refused.json()["code"]) == (422, "INVALID_REQUEST")


@pytest.mark.parametrize(
    "uvci", ["nope", "URN:UVCI:01:JP:VRS/" + "A" * 500, "%00", "../../etc/passwd", quote("#")]
)
def test_unknown_or_hostile_uvcis_are_404(
    client: TestClient, world: World, taro: dict[str, str], uvci: str
) -> None:
    answer = client.get(f"/v1/certificates/{uvci}/qr.png", headers=taro)
    assert answer.status_code == 404
    assert answer.json()["code"] in {"CERTIFICATE_NOT_FOUND", "NOT_FOUND"}


def test_birth_date_of_card_counts(client: TestClient, world: World, settings: Settings) -> None:
    # Same number registered with another birth date: the card's holder is not that person.
    add_card_holder(world, "R1", TARO, birth_date=date(1990, 1, 1))
    card = card_for(settings.data_dir, TARO, birth_date=date(1980, 4, 15))
    challenge = client.post("/v1/auth/challenge").json()["challenge"]
    refused = client.post("/v1/auth/card", json=card.answer(challenge))
    assert refused.status_code == 403
