"""Credentials, principals and the role and tenancy checks every use case calls."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import select
from sqlmodel import Session

from vrs.db.models import Credential, Device, Municipality, Site
from vrs.domain import audit
from vrs.domain.errors import Forbidden, NotFound, Unauthenticated, Unprocessable

TOKEN_PREFIX = "vrs_"  # noqa: S105 - a public marker, not a secret


class Role(StrEnum):
    ADMIN = "admin"
    MUNICIPALITY = "municipality"
    SITE = "site"
    RESIDENT = "resident"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the credential's id, role and the tenant or site it is bound to."""

    credential_id: uuid.UUID | None
    role: Role
    name: str
    municipality_code: str | None = None
    site_code: str | None = None
    device_id: uuid.UUID | None = None
    #: A signed-in resident: the keyed hash of the card's My Number and its birth date.
    resident_key: str | None = None
    resident_birth_date: date | None = None
    #: When the principal stops being valid (resident sessions), else None.
    expires_at: datetime | None = None


#: The operator running CLI commands on the server itself.
SYSTEM = Principal(credential_id=None, role=Role.ADMIN, name="system (CLI)")


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def authenticate(session: Session, token: str) -> Principal:
    """The principal of a bearer token, or :class:`Unauthenticated`."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("BAD_TOKEN", "the bearer token is not a VRS token")
    row = session.execute(
        select(Credential).where(Credential.token_hash == hash_token(token))  # type: ignore[arg-type]
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("BAD_TOKEN", "the bearer token is unknown or revoked")
    return Principal(
        credential_id=row.id,
        role=Role(row.role),
        name=row.name,
        municipality_code=row.municipality_code,
        site_code=row.site_code,
        device_id=row.device_id,
    )


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise Forbidden(
            "ROLE_NOT_ALLOWED",
            f"this needs the role {' or '.join(r.value for r in roles)}; "
            f"the credential has {principal.role.value}",
        )


def require_municipality(principal: Principal, municipality_code: str) -> None:
    """Admin sees every municipality; a municipality credential only its own."""
    if principal.role is Role.ADMIN:
        return
    if principal.role is Role.MUNICIPALITY and principal.municipality_code == municipality_code:
        return
    raise Forbidden(
        "OTHER_TENANT", "this credential may not act for municipality " + municipality_code
    )


@dataclass(frozen=True)
class IssuedCredential:
    credential: Credential
    token: str


def create_credential(
    session: Session,
    *,
    actor: Principal,
    role: Role,
    name: str,
    now: datetime,
    municipality_code: str | None = None,
    site_code: str | None = None,
) -> IssuedCredential:
    """Make a credential and return its token (shown once; only its hash is kept).

    A ``site`` credential is one enrolled tablet: it creates the device row at that site.
    """
    require_role(actor, Role.ADMIN)
    name = name.strip()
    if not name:
        raise Unprocessable("MISSING_NAME", "a credential needs a name")
    device_id: uuid.UUID | None = None
    if role is Role.MUNICIPALITY:
        if not municipality_code:
            raise Unprocessable(
                "MISSING_MUNICIPALITY", "a municipality credential needs --municipality"
            )
        if session.get(Municipality, municipality_code) is None:
            raise NotFound("UNKNOWN_MUNICIPALITY", f"no municipality {municipality_code}")
        site_code = None
    elif role is Role.SITE:
        if not site_code:
            raise Unprocessable("MISSING_SITE", "a site credential needs --site")
        if session.get(Site, site_code) is None:
            raise NotFound("UNKNOWN_SITE", f"no site {site_code}")
        device = Device(site_code=site_code, name=name, enrolled_at=now)
        session.add(device)
        device_id = device.id
        municipality_code = None
    elif role is Role.ADMIN:
        municipality_code = site_code = None
    else:
        raise Unprocessable("BAD_ROLE", "credentials of this kind are not made here")
    token = new_token()
    credential = Credential(
        token_hash=hash_token(token),
        role=role.value,
        name=name,
        municipality_code=municipality_code,
        site_code=site_code,
        device_id=device_id,
        created_at=now,
    )
    session.add(credential)
    audit.record(
        session,
        actor,
        "credential.create",
        now=now,
        municipality_code=municipality_code,
        subject=str(credential.id),
        details={"role": role.value, "name": name, "site_code": site_code},
    )
    return IssuedCredential(credential=credential, token=token)


def revoke_credential(
    session: Session, *, actor: Principal, credential_id: uuid.UUID, now: datetime
) -> Credential:
    require_role(actor, Role.ADMIN)
    credential = session.get(Credential, credential_id)
    if credential is None:
        raise NotFound("UNKNOWN_CREDENTIAL", f"no credential {credential_id}")
    if credential.revoked_at is None:
        credential.revoked_at = now
        if credential.device_id is not None:
            device = session.get(Device, credential.device_id)
            if device is not None:
                device.active = False
        audit.record(
            session,
            actor,
            "credential.revoke",
            now=now,
            municipality_code=credential.municipality_code,
            subject=str(credential.id),
        )
    return credential
