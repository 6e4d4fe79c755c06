"""Certificates: issued to a signed-in resident or at the municipality window, and drawn as
a QR code (PNG, SVG) for their owner or owning municipality."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from certs.pdf import certificate_pdf as render_pdf
from certs.qr import qr_png, qr_svg
from vrs.api.certifier import Certifier
from vrs.api.deps import CurrentPrincipal, KeysDep, NowDep, SessionDep
from vrs.domain import issuance

router = APIRouter(tags=["certificates"])


class PassportNameIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    family: str = Field(max_length=100)
    given: str = Field(default="", max_length=100)


class CertificateCreate(BaseModel):
    """What to certify: the latest dose unless ``dose`` says which; overseas certificates
    carry the name as the passport spells it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["domestic", "overseas"]
    dose: int | None = Field(default=None, ge=1, le=9)
    passport_name: PassportNameIn | None = None

    def to_request(self) -> issuance.CertificateRequest:
        name = self.passport_name
        return issuance.CertificateRequest(
            kind=self.kind,
            dose=self.dose,
            passport_name=None
            if name is None
            else issuance.PassportName(family=name.family, given=name.given),
        )


class CertificatePublic(BaseModel):
    uvci: str
    hc1: str
    kind: str
    dose_number: int
    municipality_code: str
    issued_at: datetime
    expires_at: datetime
    kid: str = Field(description="key id of the document signer (hex)")
    qr_png: str
    qr_svg: str
    pdf: str


def _public(view: issuance.IssuedView) -> CertificatePublic:
    base = "/v1/certificates/" + quote(view.uvci, safe=":/")
    return CertificatePublic(
        uvci=view.uvci,
        hc1=view.hc1,
        kind=view.kind,
        dose_number=view.dose_number,
        municipality_code=view.municipality_code,
        issued_at=view.issued_at,
        expires_at=view.expires_at,
        kid=view.kid,
        qr_png=base + "/qr.png",
        qr_svg=base + "/qr.svg",
        pdf=base + "/certificate.pdf",
    )


@router.post("/certificates", response_model=CertificatePublic, status_code=201)
async def issue_own_certificate(
    body: CertificateCreate,
    request: Request,
    principal: CurrentPrincipal,
    keys: KeysDep,
    now: NowDep,
) -> CertificatePublic:
    """A certificate for the signed-in resident (resident session from ``/v1/auth/card``)."""
    certifier: Certifier = request.app.state.certifier
    signer = await certifier.signer(keys, now)
    view = await certifier.issue_for_resident(principal, body.to_request(), signer, now)
    return _public(view)


@router.post(
    "/municipalities/{code}/residents/{local_id}/certificates",
    response_model=CertificatePublic,
    status_code=201,
)
def issue_at_window(
    code: str,
    local_id: str,
    body: CertificateCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    keys: KeysDep,
    now: NowDep,
) -> CertificatePublic:
    """A certificate issued by municipality staff (protected residents included)."""
    view = issuance.issue_at_window(
        session,
        actor=principal,
        municipality_code=code,
        local_id=local_id,
        request=body.to_request(),
        signer=keys.signer(now),
        now=now,
    )
    return _public(view)


_PRIVATE = {"Cache-Control": "private, no-store"}


@router.get("/certificates/{uvci:path}/qr.png", response_class=Response)
def certificate_qr_png(
    uvci: str, session: SessionDep, principal: CurrentPrincipal, now: NowDep
) -> Response:
    """The certificate's QR code as a PNG (owner or owning municipality)."""
    row = issuance.certificate_for(session, actor=principal, uvci=uvci, purpose="qr.png", now=now)
    return Response(qr_png(row.hc1), media_type="image/png", headers=_PRIVATE)


@router.get("/certificates/{uvci:path}/qr.svg", response_class=Response)
def certificate_qr_svg(
    uvci: str, session: SessionDep, principal: CurrentPrincipal, now: NowDep
) -> Response:
    """The certificate's QR code as SVG (owner or owning municipality)."""
    row = issuance.certificate_for(session, actor=principal, uvci=uvci, purpose="qr.svg", now=now)
    return Response(qr_svg(row.hc1), media_type="image/svg+xml", headers=_PRIVATE)


@router.get("/certificates/{uvci:path}/certificate.pdf", response_class=Response)
def certificate_pdf(
    uvci: str, session: SessionDep, principal: CurrentPrincipal, now: NowDep
) -> Response:
    """The printable certificate (A4 PDF, Japanese and English; owner or owning municipality)."""
    row = issuance.certificate_for(session, actor=principal, uvci=uvci, purpose="pdf", now=now)
    pdf = render_pdf(
        hc1=row.hc1,
        payload=issuance.signed_payload(row.hc1),
        issued_at=row.issued_at,
        expires_at=row.expires_at,
    )
    return Response(pdf, media_type="application/pdf", headers=_PRIVATE)
