"""Resident sign-in: a one-time challenge, then the card's answer to it."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from vrs.api.deps import ClientAddressDep, IdentityVerifierDep, NowDep, SessionDep, SettingsDep
from vrs.domain import resident_auth

router = APIRouter(tags=["resident sign-in"])


class ChallengePublic(BaseModel):
    challenge: str = Field(description="base64url; the card signs it (see docs/vrs.md)")
    expires_at: datetime


class CardAssertion(BaseModel):
    """The card's answer: its issuer-signed holder data and its signature over the challenge."""

    model_config = ConfigDict(extra="forbid")

    challenge: str = Field(max_length=100)
    holder: str = Field(max_length=8192)
    issuer_signature: str = Field(max_length=400)
    signature: str = Field(max_length=400)


class SessionPublic(BaseModel):
    token: str = Field(description="bearer token for the resident's own endpoints")
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: datetime


@router.post("/auth/challenge", response_model=ChallengePublic)
def new_challenge(
    request: Request, session: SessionDep, client: ClientAddressDep, now: NowDep
) -> ChallengePublic:
    """A one-time challenge for a card to sign (valid for two minutes, one attempt)."""
    made = resident_auth.new_challenge(
        session, client_address=client, now=now, policy=request.app.state.auth_policy
    )
    return ChallengePublic(challenge=made.challenge, expires_at=made.expires_at)


@router.post("/auth/card", response_model=SessionPublic)
def sign_in_with_card(
    body: CardAssertion,
    request: Request,
    session: SessionDep,
    verifier: IdentityVerifierDep,
    settings: SettingsDep,
    client: ClientAddressDep,
    now: NowDep,
) -> SessionPublic:
    """Check the card's answer and open a short-lived resident session."""
    issued = resident_auth.sign_in(
        session,
        verifier=verifier,
        challenge=body.challenge,
        assertion=body.model_dump(exclude={"challenge"}),
        client_address=client,
        hmac_key=settings.my_number_hmac_key,
        now=now,
        policy=request.app.state.auth_policy,
    )
    return SessionPublic(token=issued.token, expires_at=issued.expires_at)
