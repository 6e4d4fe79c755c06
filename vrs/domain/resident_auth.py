"""Resident sign-in: one-time challenges, identity assertions, sessions and rate limits.

1. :func:`new_challenge` stores the hash of 32 random bytes, valid for
   :attr:`AuthPolicy.challenge_ttl`, and hands the bytes to the client.
2. The card signs them; :func:`sign_in` consumes the challenge (one attempt per challenge,
   whatever its outcome), has the :class:`~vrs.domain.identity.IdentityVerifier` check the
   assertion, matches the resident by the keyed hash of the My Number and the birth date, and
   returns a session token (stored as a hash, valid for :attr:`AuthPolicy.session_ttl`).
3. :func:`authenticate_session` turns the token back into a resident :class:`Principal`.

Failed attempts are counted per client address and, once the card issuer's signature
proved which card it is, per card; over the limit within the window the answer is
``429 SIGN_IN_RATE_LIMITED`` (nothing is checked then) until the window has passed.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, func, select, update
from sqlmodel import Session, col

from vrs.db.models import AuthChallenge, AuthFailure, Resident, ResidentSession
from vrs.domain import audit
from vrs.domain.auth import Principal, Role, hash_token
from vrs.domain.errors import Forbidden, TooManyRequests, Unauthenticated
from vrs.domain.identity import (
    IdentityRejected,
    IdentityVerifier,
    b64u_decode,
    b64u_encode,
)
from vrs.domain.mynumber import my_number_hmac

#: Resident session tokens start with this (credentials' tokens with ``vrs_``).
SESSION_PREFIX: Final = "vrsr_"
CHALLENGE_BYTES = 32


@dataclass(frozen=True)
class AuthPolicy:
    challenge_ttl: timedelta = timedelta(minutes=2)
    session_ttl: timedelta = timedelta(minutes=15)
    #: Failed attempts allowed per window, per card and per client address.
    card_failures: int = 5
    address_failures: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Challenge:
    challenge: str
    expires_at: datetime


@dataclass(frozen=True)
class IssuedSession:
    token: str
    expires_at: datetime
    residents: int


def _challenge_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _address(client_address: str) -> str:
    return client_address[:64]


def new_challenge(
    session: Session, *, client_address: str, now: datetime, policy: AuthPolicy
) -> Challenge:
    """A fresh one-time challenge; commits. Expired challenges are swept now and then."""
    _check_limit(session, "addr:" + _address(client_address), policy.address_failures, now, policy)
    raw = secrets.token_bytes(CHALLENGE_BYTES)
    expires_at = now + policy.challenge_ttl
    session.add(
        AuthChallenge(
            challenge_hash=_challenge_hash(raw),
            created_at=now,
            expires_at=expires_at,
            client_address=_address(client_address),
        )
    )
    if secrets.randbelow(32) == 0:
        _sweep(session, now, policy)
    session.commit()
    return Challenge(challenge=b64u_encode(raw), expires_at=expires_at)


def _sweep(session: Session, now: datetime, policy: AuthPolicy) -> None:
    session.execute(delete(AuthChallenge).where(col(AuthChallenge.expires_at) < now))
    session.execute(delete(AuthFailure).where(col(AuthFailure.at) < now - policy.window))
    session.execute(delete(ResidentSession).where(col(ResidentSession.expires_at) < now))


def _failures(session: Session, subject: str, now: datetime, policy: AuthPolicy) -> int:
    count = session.execute(
        select(func.count())
        .select_from(AuthFailure)
        .where(col(AuthFailure.subject) == subject, col(AuthFailure.at) > now - policy.window)
    ).scalar_one()
    return int(count)


def _check_limit(
    session: Session, subject: str, limit: int, now: datetime, policy: AuthPolicy
) -> None:
    if _failures(session, subject, now, policy) >= limit:
        raise TooManyRequests(
            "SIGN_IN_RATE_LIMITED",
            "too many failed sign-in attempts; try again later",
            retry_after=int(policy.window.total_seconds()),
        )


def _fail(
    session: Session, subjects: list[str], code: str, message: str, now: datetime
) -> Unauthenticated:
    """Record a failure against each subject, commit, and return the error to raise."""
    _record_failure(session, subjects, code, now)
    return Unauthenticated(code, message)


def _record_failure(session: Session, subjects: list[str], code: str, now: datetime) -> None:
    for subject in subjects:
        session.add(AuthFailure(subject=subject, at=now, code=code))
    session.commit()


def sign_in(
    session: Session,
    *,
    verifier: IdentityVerifier,
    challenge: str,
    assertion: dict[str, str],
    client_address: str,
    hmac_key: bytes,
    now: datetime,
    policy: AuthPolicy,
) -> IssuedSession:
    """Check an answered challenge and open a resident session; commits (also on failure)."""
    address = "addr:" + _address(client_address)
    _check_limit(session, address, policy.address_failures, now, policy)
    try:
        raw = b64u_decode(challenge, limit=CHALLENGE_BYTES, code="BAD_CHALLENGE")
    except IdentityRejected as exc:
        raise _fail(session, [address], exc.code, "the challenge is malformed", now) from None
    consumed = session.execute(
        update(AuthChallenge)
        .where(
            col(AuthChallenge.challenge_hash) == _challenge_hash(raw),
            col(AuthChallenge.used_at).is_(None),
            col(AuthChallenge.expires_at) > now,
        )
        .values(used_at=now)
    )
    session.commit()
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise _fail(
            session,
            [address],
            "CHALLENGE_INVALID",
            "the challenge is unknown, already used or expired; ask for a new one",
            now,
        )
    try:
        identity = verifier.verify(assertion, challenge=raw, now=now)
    except IdentityRejected as exc:
        subjects = [address] + ([exc.subject] if exc.subject else [])
        raise _fail(session, subjects, exc.code, exc.message, now) from None
    _check_limit(session, identity.subject, policy.card_failures, now, policy)
    key = my_number_hmac(hmac_key, identity.my_number)
    residents = session.execute(
        select(col(Resident.municipality_code), col(Resident.birth_date)).where(
            col(Resident.my_number_hmac) == key
        )
    ).all()
    if not any(birth == identity.birth_date for _, birth in residents):
        _record_failure(session, [address, identity.subject], "RESIDENT_NOT_FOUND", now)
        raise Forbidden(
            "RESIDENT_NOT_FOUND",
            "no resident registered with this card's number and birth date",
        )
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    row = ResidentSession(
        token_hash=hash_token(token),
        my_number_hmac=key,
        birth_date=identity.birth_date,
        card_key=identity.subject.removeprefix("card:"),
        created_at=now,
        expires_at=now + policy.session_ttl,
        client_address=_address(client_address),
    )
    session.add(row)
    audit.record(
        session,
        Principal(credential_id=row.id, role=Role.RESIDENT, name="resident"),
        "resident.sign_in",
        now=now,
        subject=str(row.id),
        count=len(residents),
        details={"card": identity.subject},
    )
    session.commit()
    return IssuedSession(token=token, expires_at=row.expires_at, residents=len(residents))


def authenticate_session(session: Session, token: str, now: datetime) -> Principal:
    """The resident principal of a session token, or :class:`Unauthenticated`."""
    if not token.startswith(SESSION_PREFIX) or len(token) > 200:
        raise Unauthenticated("BAD_TOKEN", "the bearer token is not a resident session")
    row = session.execute(
        select(ResidentSession).where(col(ResidentSession.token_hash) == hash_token(token))
    ).scalar_one_or_none()
    if row is None or row.expires_at <= now:
        raise Unauthenticated("SESSION_EXPIRED", "the session is unknown or expired; sign in again")
    return Principal(
        credential_id=row.id,
        role=Role.RESIDENT,
        name="resident",
        resident_key=row.my_number_hmac,
        resident_birth_date=row.birth_date,
        expires_at=row.expires_at,
    )
