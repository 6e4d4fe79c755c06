"""Printable coupon sheets: one ticket per resident for one dose, as PDF (A4) or PNG.

Every ticket comes from the one ticket description in :mod:`certs.coupon`
(:func:`certs.coupon.coupon_layout`): the 18-digit line in OCR-B at 9 pt drawn from
:func:`certs.ocrb.text_outlines` (the same glyph atlas the scanner's test coupons use), the QR
code of the same 18 digits (:func:`certs.coupon.qr_modules`, 10 x 10 mm), and around them
the municipality, the resident's name in kanji and kana, the birth date and the dose, in
Japanese with reportlab's built-in CID font (no font file needed). A PNG is one ticket,
rasterised by :func:`certs.coupon.coupon_png` (its texts are Latin: the name as the Hepburn
suggestion of the kana).

Who is printed: the residents named, or every resident of the municipality holding a
coupon number (by local id, up to ``limit``). Protected residents are left out of a batch
(their coupons are handed over at the window) and printed only when named. Printing reads
personal data, so it is audit-logged. Codes: ``BAD_DOSE``, ``BAD_LIMIT``, ``NO_COUPON_NUMBER``,
``UNKNOWN_RESIDENT``, ``NOTHING_TO_PRINT``, ``ONE_TICKET_PER_PNG``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select
from sqlmodel import Session

from certs.coupon import CouponTicket, coupon_layout, coupon_png, qr_modules
from certs.errors import TransliterationError
from certs.names import hepburn_from_kana
from certs.ocrb import text_outlines
from vrs.domain import audit
from vrs.domain.auth import Principal
from vrs.domain.corrections import _municipality, require_reader
from vrs.domain.errors import Unprocessable
from vrs.domain.rules import RESIDENT

FONT = "HeiseiKakuGo-W5"
MAX_TICKETS = 10_000
#: Tickets per A4 page: two columns of five 90 x 50 mm tickets.
COLUMNS, ROWS = 2, 5
_MARGIN_X, _MARGIN_Y = 15.0, 23.5

#: reportlab's even-odd fill rule (``canvas.FILL_EVEN_ODD``, missing from its type stubs):
#: glyph outlines with counters (0, 4, 6, 8, 9) need it to keep their holes.
_FILL_EVEN_ODD = 0


@dataclass(frozen=True)
class Ticket:
    line: str
    local_id: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: date


@dataclass(frozen=True)
class Sheet:
    municipality_code: str
    municipality_name: str
    dose: int
    tickets: list[Ticket]


def coupon_sheet(
    session: Session,
    *,
    actor: Principal,
    municipality_code: str,
    dose: int,
    local_ids: Sequence[str] | None,
    limit: int,
    now: datetime,
) -> Sheet:
    """The tickets to print (see the module docstring); audit-logged, commits.

    The municipality prints its own; the national operator (and the ``vrs`` CLI on the
    server) may print for any municipality.
    """
    require_reader(actor, municipality_code)
    municipality = _municipality(session, municipality_code)
    if not 1 <= dose <= 9:
        raise Unprocessable("BAD_DOSE", "dose is 1-9 (the coupon's dose digit)")
    if not 1 <= limit <= MAX_TICKETS:
        raise Unprocessable("BAD_LIMIT", f"limit is 1-{MAX_TICKETS}")
    mine = RESIDENT.c.municipality_code == municipality_code
    stmt = select(
        RESIDENT.c.local_id, RESIDENT.c.coupon_number, RESIDENT.c.family_name,
        RESIDENT.c.given_name, RESIDENT.c.family_name_kana, RESIDENT.c.given_name_kana,
        RESIDENT.c.birth_date,
    ).where(mine)  # fmt: skip
    if local_ids is None:
        stmt = stmt.where(RESIDENT.c.coupon_number.is_not(None), RESIDENT.c.protected.is_(False))
        rows = session.connection().execute(stmt.order_by(RESIDENT.c.local_id).limit(limit)).all()
    else:
        wanted = list(dict.fromkeys(local_ids))[: MAX_TICKETS + 1]
        if len(wanted) > limit:
            raise Unprocessable("BAD_LIMIT", f"at most {limit} residents per sheet")
        found = {r.local_id: r for r in session.connection().execute(
            stmt.where(RESIDENT.c.local_id.in_(wanted)))}  # fmt: skip
        missing = [lid for lid in wanted if lid not in found]
        if missing:
            raise Unprocessable(
                "UNKNOWN_RESIDENT", "not residents of this municipality", local_ids=missing[:100]
            )
        without = [lid for lid in wanted if found[lid].coupon_number is None]
        if without:
            raise Unprocessable(
                "NO_COUPON_NUMBER",
                "issue coupon numbers first (POST .../coupons)",
                local_ids=without[:100],
            )
        rows = [found[lid] for lid in wanted]
    if not rows:
        raise Unprocessable(
            "NOTHING_TO_PRINT", "no resident of the municipality has a coupon number"
        )
    tickets = [
        Ticket(f"1{dose}{municipality_code}{r.coupon_number}", r.local_id, r.family_name,
               r.given_name, r.family_name_kana, r.given_name_kana, r.birth_date)
        for r in rows
    ]  # fmt: skip
    audit.record(
        session,
        actor,
        "coupons.print",
        now=now,
        municipality_code=municipality_code,
        count=len(tickets),
        details={"dose": dose, "named": local_ids is not None},
    )
    session.commit()
    return Sheet(municipality_code, municipality.name, dose, tickets)


# ---------------------------------------------------------------------------------------
# Rendering


def sheet_pdf(sheet: Sheet, *, issued_on: date) -> bytes:
    """The tickets on A4 pages, ten to a page, at true size (90 x 50 mm each)."""
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, pageCompression=1)
    canvas.setTitle(f"接種券 {sheet.municipality_code} 第{sheet.dose}回")
    canvas.setAuthor("VRS")
    per_page = COLUMNS * ROWS
    for index, ticket in enumerate(sheet.tickets):
        if index and index % per_page == 0:
            canvas.showPage()
        slot = index % per_page
        left = (_MARGIN_X + (slot % COLUMNS) * 90.0) * mm
        top = A4[1] - (_MARGIN_Y + (slot // COLUMNS) * 50.0) * mm
        _draw_ticket(canvas, sheet, ticket, left, top, issued_on)
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def _draw_ticket(
    canvas: Canvas, sheet: Sheet, ticket: Ticket, left: float, top: float, issued_on: date
) -> None:
    layout = coupon_layout(CouponTicket(line=ticket.line))
    width, height = layout.size_mm

    def at(x_mm: float, y_mm: float) -> tuple[float, float]:
        """A point of the layout (mm from the ticket's top-left) on the page."""
        return left + x_mm * mm, top - y_mm * mm

    canvas.setLineWidth(0.25 * mm)
    canvas.rect(*at(1.5, height - 1.5), (width - 3.0) * mm, (height - 3.0) * mm)
    canvas.setDash(1 * mm, 1 * mm)  # cut line above the OCR zone
    canvas.line(*at(2.5, height - 12.5), *at(width - 2.5, height - 12.5))
    canvas.setDash()
    canvas.setFont(FONT, 9)
    canvas.drawString(*at(4.0, 6.5), "新型コロナウイルスワクチン接種券")
    canvas.drawString(*at(4.0, 14.0), f"{sheet.municipality_name}（{sheet.municipality_code}）")
    canvas.setFont(FONT, 7)
    canvas.drawString(*at(4.0, 19.0), f"{ticket.family_name_kana}　{ticket.given_name_kana}")
    canvas.setFont(FONT, 10)
    canvas.drawString(*at(4.0, 23.5), f"{ticket.family_name}　{ticket.given_name}　様")
    canvas.setFont(FONT, 7)
    canvas.drawString(*at(4.0, 28.0), f"生年月日 {ticket.birth_date:%Y年%m月%d日}")
    canvas.drawString(*at(44.0, 28.0), f"第{sheet.dose}回")
    canvas.drawString(*at(4.0, 33.0), f"発行日 {issued_on:%Y年%m月%d日}")
    canvas.drawString(*at(44.0, 33.0), f"宛名番号 {ticket.local_id}")
    _draw_line(canvas, ticket.line, at(*layout.line_origin_mm))
    if layout.qr_box_mm is not None:
        x, y, size, _ = layout.qr_box_mm
        _draw_qr(canvas, ticket.line, at(x, y), size * mm)


def _draw_line(canvas: Canvas, line: str, origin: tuple[float, float]) -> None:
    """The 18 digits in OCR-B 9 pt from the shared glyph atlas, filled even-odd."""
    path = canvas.beginPath()
    for polygon in text_outlines(line, 9.0):
        (x0, y0), *rest = polygon
        path.moveTo(origin[0] + x0, origin[1] + y0)
        for x, y in rest:
            path.lineTo(origin[0] + x, origin[1] + y)
        path.close()
    canvas.drawPath(path, stroke=0, fill=1, fillMode=_FILL_EVEN_ODD)


def _draw_qr(canvas: Canvas, line: str, top_left: tuple[float, float], size: float) -> None:
    modules = qr_modules(line)
    n = modules.shape[0]
    cell = size / n
    for row in range(n):
        col = 0
        while col < n:
            if not modules[row, col]:
                col += 1
                continue
            start = col
            while col < n and modules[row, col]:
                col += 1
            y = top_left[1] - (row + 1) * cell
            canvas.rect(top_left[0] + start * cell, y, (col - start) * cell, cell, 0, 1)


def ticket_png(sheet: Sheet, *, issued_on: date, dpi: float = 300.0) -> bytes:
    """The sheet's single ticket as a PNG (Latin texts)."""
    if len(sheet.tickets) != 1:
        raise Unprocessable("ONE_TICKET_PER_PNG", "a PNG holds one ticket; name one resident")
    [ticket] = sheet.tickets
    try:
        family = hepburn_from_kana(ticket.family_name_kana)
        name = f"{family} {hepburn_from_kana(ticket.given_name_kana)}"
    except TransliterationError:
        name = ticket.local_id
    return coupon_png(
        CouponTicket(
            line=ticket.line,
            holder_name=name[:40],
            municipality_name=f"MUNICIPALITY {sheet.municipality_code}",
            issued_on=issued_on.isoformat(),
        ),
        dpi=dpi,
    )
