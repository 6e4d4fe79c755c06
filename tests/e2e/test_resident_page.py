"""The resident's page in a real browser: sign in with a development card (the card key signs
the challenge with WebCrypto in the page), see the doses, get an overseas certificate with the
kana-based spelling suggestion, and download the QR PNG and the PDF. The downloaded PNG is
then verified by the offline verifier against a trust bundle signed by the service's keys."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

import verifier
from certs.trustbundle import BundleDsc, Revocations, bundle_payload, sign_bundle
from tests.conftest import NOW, World
from tests.e2e.browser import Steps
from tests.vrs.card_support import TARO, add_card_holder, card_for
from tests.vrs.dose_support import add_lots, body, coupon_number
from verifier.testing import sample_rules, sample_value_sets
from vrs.settings import Settings


def record_two_doses(live_url: str, world: World) -> None:
    add_lots(world)
    add_card_holder(world, "R1", TARO, coupon_number=coupon_number(1))
    for dose, day in ((1, "2023-04-01"), (2, "2023-04-22")):
        answer = httpx.post(
            live_url + "/v1/dose-records",
            json=body(1, dose, vaccinated_on=day),
            headers=world.headers("site"),
        )
        assert answer.status_code == 201, answer.text


def service_trust(app: FastAPI) -> verifier.TrustStore:
    """The verifier's trust: a bundle of the service's DSCs, signed by its bundle key."""
    ring = app.state.keys.ring(NOW)
    payload = bundle_payload(
        sequence=1,
        issued_at=NOW,
        valid_until=NOW + timedelta(days=2),
        dscs=[BundleDsc(dsc.certificate.der) for dsc in ring.listed_dscs(NOW)],
        cscas=[ring.csca.der],
        value_sets=sample_value_sets(),
        rules=sample_rules(),
        revocations=Revocations(signature=[]),
    )
    bundle = sign_bundle(payload, ring.bundle_signer())
    return verifier.load_trust_bundle(bundle, ring.bundle_public_key_pem)


def test_a_resident_downloads_a_certificate_that_verifies(
    page: Any,
    live_url: str,
    world: World,
    settings: Settings,
    app: FastAPI,
    steps: Steps,
    tmp_path: Path,
) -> None:
    record_two_doses(live_url, world)
    card_file = tmp_path / "taro-card.json"
    card_for(settings.data_dir, TARO).save(card_file)

    page.goto(live_url + "/app/resident?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    steps.shot(page, "sign-in")
    page.get_by_label("Card file (development)").set_input_files(str(card_file))
    page.get_by_role("button", name="Sign in with the card").click()
    page.locator("#me").wait_for(state="visible")
    assert page.locator("#me-kana").inner_text() == "ヤマダ タロウ"
    assert page.locator("#doses tr").count() == 2
    steps.shot(page, "doses")

    page.get_by_label("Overseas (passport spelling)").check()
    assert "YAMADA / TARO" in page.locator("#suggestion").inner_text()
    assert page.get_by_label("Family name (as in the passport)").input_value() == "YAMADA"
    steps.shot(page, "overseas-form")
    page.get_by_role("button", name="Issue").click()
    qr = page.get_by_role("img", name="QR code of your vaccination certificate (dose 2")
    qr.wait_for(state="visible")
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 300  # large enough to scan from the screen
    steps.shot(page, "certificate")

    with page.expect_download() as png_download:
        page.get_by_role("link", name="Download the QR image (PNG)").click()
    png_path = tmp_path / "downloaded-qr.png"
    png_download.value.save_as(png_path)
    with page.expect_download() as pdf_download:
        page.get_by_role("link", name="Download the certificate (PDF)").click()
    pdf_path = tmp_path / "downloaded.pdf"
    pdf_download.value.save_as(pdf_path)
    assert pdf_path.read_bytes().startswith(b"%PDF-")

    result = verifier.verify(
        verifier.decode(png_path.read_bytes()),
        trust=service_trust(app),
        now=NOW + timedelta(hours=1),
        mode="border:DE",
    )
    assert result.status is verifier.Status.VALID, result
    assert result.holder is not None
    assert result.holder.family_name_standardised == "YAMADA"
    assert result.holder.date_of_birth == "1980-04-15"


def test_the_page_follows_the_browser_language_and_switches(
    page: Any, live_url: str, steps: Steps
) -> None:
    page.goto(live_url + "/app/resident")  # the browser asks for en-GB
    assert page.locator("html").get_attribute("lang") == "en"
    steps.shot(page, "english")
    page.get_by_role("link", name="日本語").click()
    page.get_by_role("heading", name="接種証明書").wait_for()
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.get_by_label("カードファイル(開発用)").count() == 1
    steps.shot(page, "japanese")
