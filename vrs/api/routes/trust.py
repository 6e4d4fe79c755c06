"""The public trust bundle verifiers sync (docs/trust-bundle.md) and its pinned key."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from certs.trustbundle import MEDIA_TYPE
from vrs.api.deps import KeysDep, NowDep, SessionDep
from vrs.domain.trust import TrustPublisher

router = APIRouter(tags=["trust"])


@router.get("/trust/bundle", response_class=Response)
def trust_bundle(request: Request, session: SessionDep, now: NowDep) -> Response:
    """The signed trust bundle (COSE_Sign1); ``If-None-Match`` with its ETag answers 304."""
    publisher: TrustPublisher = request.app.state.trust
    bundle = publisher.current(session, now)
    headers = {"ETag": bundle.etag, "Cache-Control": "public, max-age=60"}
    wanted = request.headers.get("if-none-match", "")
    if bundle.etag in {tag.strip() for tag in wanted.split(",")} or wanted.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(bundle.data, media_type=MEDIA_TYPE, headers=headers)


@router.get("/trust/bundle-key", response_class=Response)
def trust_bundle_key(keys: KeysDep, now: NowDep) -> Response:
    """The trust-bundle signing key's public key (PEM); verifiers pin it out of band."""
    return Response(
        keys.ring(now).bundle_public_key_pem,
        media_type="application/x-pem-file",
        headers={"Cache-Control": "public, max-age=3600"},
    )
