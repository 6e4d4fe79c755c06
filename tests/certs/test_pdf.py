"""The printable PDF: rendered by pdfium, its QR reads back; its text is Japanese and English."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pypdf
import pypdfium2
import pytest
import zxingcpp

from certs import HolderName, RenderError
from certs.pdf import certificate_pdf
from certs.testing import make_certificate, make_test_signer

SIGNER = make_test_signer()


def _pdf(**overrides: Any) -> tuple[bytes, Any]:
    issued = make_certificate(signer=SIGNER, **overrides)
    pdf = certificate_pdf(
        hc1=issued.hc1,
        payload=issued.payload,
        issued_at=issued.issued_at,
        expires_at=issued.expires_at,
    )
    return pdf, issued


def test_the_qr_code_in_the_rendered_pdf_reads_back_as_the_hc1_text() -> None:
    pdf, issued = _pdf()
    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=2).to_pil()
    found = zxingcpp.read_barcode(image)
    assert found is not None and found.text == issued.hc1


def test_the_pdf_says_who_what_and_when_in_japanese_and_english() -> None:
    pdf, issued = _pdf()
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for expected in [
        "新型コロナウイルス感染症 予防接種証明書",
        "COVID-19 Vaccination Certificate",
        "山田 太郎",
        "YAMADA TARO",
        "1980-04-01",
        "Comirnaty",
        "2 / 2",
        "2025-12-20",
        "日本 Japan",
        "2027-01-15",
        issued.uvci,
    ]:
        assert expected in text


def test_the_same_certificate_gives_the_same_bytes() -> None:
    issued = make_certificate(signer=SIGNER)
    parts = {
        "hc1": issued.hc1,
        "payload": issued.payload,
        "issued_at": issued.issued_at,
        "expires_at": issued.expires_at,
    }
    assert certificate_pdf(**parts) == certificate_pdf(**parts)


def test_a_long_kana_name_and_no_expiry_still_render() -> None:
    name = HolderName("ア" * 80, "", "A" * 80, "")
    issued = make_certificate(signer=SIGNER, name=name)
    pdf = certificate_pdf(
        hc1=issued.hc1, payload=issued.payload, issued_at=issued.issued_at, expires_at=None
    )
    assert "有効期限" not in pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


@pytest.mark.parametrize(
    "payload",
    [{}, {"nam": {}, "dob": "", "v": []}, {"nam": "x", "dob": "", "v": [{}]}, [], None],
)
def test_a_broken_payload_is_a_render_error(payload: Any) -> None:
    issued = make_certificate(signer=SIGNER)
    with pytest.raises(RenderError) as caught:
        certificate_pdf(
            hc1=issued.hc1, payload=payload, issued_at=issued.issued_at, expires_at=None
        )
    assert caught.value.code == "BAD_PAYLOAD"


def test_naive_times_are_refused() -> None:
    issued = make_certificate(signer=SIGNER)
    with pytest.raises(RenderError) as caught:
        certificate_pdf(
            hc1=issued.hc1,
            payload=issued.payload,
            issued_at=datetime(2026, 1, 1),
            expires_at=datetime(2027, 1, 1, tzinfo=UTC),
        )
    assert caught.value.code == "BAD_TIME"
