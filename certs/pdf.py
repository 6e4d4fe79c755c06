"""A printable certificate: an A4 PDF with the QR code and the holder's data in Japanese and
English (reportlab, with its built-in Japanese CID font, so no font file ships or is needed).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from certs.errors import RenderError
from certs.qr import qr_matrix

#: reportlab's built-in Japanese gothic (a CID font the PDF viewer supplies; nothing embedded).
JAPANESE_FONT = "HeiseiKakuGo-W5"
JST = timezone(timedelta(hours=9), "JST")

#: Display names of the EU value-set codes of the vaccines used in Japan (DOMAIN.md).
PRODUCT_NAMES: Mapping[str, str] = {
    "EU/1/20/1528": "Comirnaty (Pfizer/BioNTech)",
    "EU/1/20/1507": "Spikevax (Moderna)",
    "EU/1/21/1529": "Vaxzevria (AstraZeneca)",
    "EU/1/21/1618": "Nuvaxovid (Novavax)",
    "EU/1/20/1525": "Jcovden (Janssen)",
}
MANUFACTURER_NAMES: Mapping[str, str] = {
    "ORG-100030215": "Biontech Manufacturing GmbH",
    "ORG-100031184": "Moderna Biotech Spain S.L.",
    "ORG-100001699": "AstraZeneca AB",
    "ORG-100032020": "Novavax CZ a.s.",
    "ORG-100001417": "Janssen-Cilag International",
}
COUNTRY_NAMES: Mapping[str, str] = {"JP": "日本 Japan"}

_PAGE_WIDTH, _PAGE_HEIGHT = A4
_MARGIN = 20 * mm
_QR_SIDE = 70 * mm
_VALUE_X = _MARGIN + 62 * mm
_MAX_FIELD = 200  # characters drawn of any one field


def _register_font() -> None:
    if JAPANESE_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(JAPANESE_FONT))


def _field(value: Any, what: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise RenderError("BAD_PAYLOAD", f"the payload's {what} is missing or not text")
    text = str(value)
    # Control characters would corrupt the text operators; the payload never has any.
    return "".join(ch if ch.isprintable() else " " for ch in text)[:_MAX_FIELD]


def _draw_fitted(canvas: Canvas, x: float, y: float, text: str, size: float, width: float) -> None:
    """Draw ``text`` at ``size``, shrunk (down to 6 pt) to fit ``width``."""
    while size > 6 and pdfmetrics.stringWidth(text, JAPANESE_FONT, size) > width:
        size -= 0.5
    canvas.setFont(JAPANESE_FONT, size)
    canvas.drawString(x, y, text)


def _draw_qr(canvas: Canvas, hc1: str, x: float, y: float, side: float) -> None:
    matrix = qr_matrix(hc1)
    quiet = 4
    module = side / (matrix.size + 2 * quiet)
    canvas.setFillColorRGB(0, 0, 0)
    for row_index, row in enumerate(matrix.rows):
        top = y + side - (row_index + quiet + 1) * module
        column = 0
        while column < matrix.size:
            if not row[column]:
                column += 1
                continue
            start = column
            while column < matrix.size and row[column]:
                column += 1
            left = x + (start + quiet) * module
            canvas.rect(left, top, (column - start) * module, module, stroke=0, fill=1)


def _rows(
    payload: Mapping[str, Any], issued_at: datetime, expires_at: datetime | None
) -> list[tuple[str, str]]:
    try:
        nam = payload["nam"]
        entry = payload["v"][0]
        dob = payload["dob"]
    except (KeyError, IndexError, TypeError) as exc:
        raise RenderError(
            "BAD_PAYLOAD", "the payload has no name, birth date or vaccination"
        ) from exc
    if not isinstance(nam, Mapping) or not isinstance(entry, Mapping):
        raise RenderError("BAD_PAYLOAD", "the payload's name and vaccination are objects")
    registered = " ".join(_field(nam[key], key) for key in ("fn", "gn") if nam.get(key))
    icao = " ".join(
        _field(nam[key], key).replace("<", " ") for key in ("fnt", "gnt") if nam.get(key)
    )
    product = _field(entry.get("mp"), "mp")
    manufacturer = _field(entry.get("ma"), "ma")
    country = _field(entry.get("co"), "co")
    rows = [
        ("氏名 Name", registered or icao),
        ("ローマ字 Name (ICAO)", icao),
        ("生年月日 Date of birth", _field(dob, "dob") or "-"),
        ("ワクチン Vaccine", PRODUCT_NAMES.get(product, product)),
        ("製造販売業者 Manufacturer", MANUFACTURER_NAMES.get(manufacturer, manufacturer)),
        ("接種回数 Dose", f"{_field(entry.get('dn'), 'dn')} / {_field(entry.get('sd'), 'sd')}"),
        ("接種日 Date of vaccination", _field(entry.get("dt"), "dt")),
        ("接種国 Country", COUNTRY_NAMES.get(country, country)),
        ("発行者 Certificate issuer", _field(entry.get("is"), "is")),
        ("発行日 Issued", f"{issued_at.astimezone(JST):%Y-%m-%d}"),
    ]
    if expires_at is not None:
        rows.append(("有効期限 Valid until", f"{expires_at.astimezone(JST):%Y-%m-%d}"))
    rows.append(("証明書ID Certificate ID", _field(entry.get("ci"), "ci")))
    return rows


def certificate_pdf(
    *,
    hc1: str,
    payload: Mapping[str, Any],
    issued_at: datetime,
    expires_at: datetime | None,
) -> bytes:
    """The printable A4 certificate of a vaccination ``payload`` and its ``HC1:`` text.

    The same inputs give the same bytes (reportlab's invariant mode), so the PDF can be cached
    and served with an ETag.
    """
    for moment in (issued_at, expires_at):
        if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
            raise RenderError("BAD_TIME", "issued_at and expires_at are aware datetimes")
    if not isinstance(payload, Mapping):
        raise RenderError("BAD_PAYLOAD", "the payload is the hcert JSON object")
    rows = _rows(payload, issued_at, expires_at)
    _register_font()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True, pageCompression=1)
    canvas.setTitle("COVID-19 Vaccination Certificate")
    canvas.setSubject("新型コロナウイルス感染症 予防接種証明書")
    top = _PAGE_HEIGHT - _MARGIN
    canvas.setFont(JAPANESE_FONT, 16)
    canvas.drawString(_MARGIN, top - 6 * mm, "新型コロナウイルス感染症 予防接種証明書")
    canvas.setFont(JAPANESE_FONT, 13)
    canvas.drawString(_MARGIN, top - 14 * mm, "COVID-19 Vaccination Certificate")
    qr_top = top - 22 * mm
    _draw_qr(canvas, hc1, (_PAGE_WIDTH - _QR_SIDE) / 2, qr_top - _QR_SIDE, _QR_SIDE)
    y = qr_top - _QR_SIDE - 12 * mm
    value_width = _PAGE_WIDTH - _MARGIN - _VALUE_X
    for label, value in rows:
        canvas.setFont(JAPANESE_FONT, 9)
        canvas.drawString(_MARGIN, y, label)
        _draw_fitted(canvas, _VALUE_X, y, value, 11, value_width)
        y -= 8.5 * mm
    canvas.setFont(JAPANESE_FONT, 8)
    canvas.drawString(_MARGIN, _MARGIN + 4 * mm, "この証明書は QR コードを読み取って検証します。")
    canvas.drawString(_MARGIN, _MARGIN, "Verify this certificate by scanning its QR code.")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
