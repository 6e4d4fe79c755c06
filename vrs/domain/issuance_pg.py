"""Issuing a signed-in resident's certificate on PostgreSQL through the asynchronous fast path.

The rules are :mod:`vrs.domain.issuance`'s, called from the same functions (the request and
person checks, :func:`~vrs.domain.issuance.settle`, :func:`~vrs.domain.issuance.sign`); only
the storage differs. Two round trips on an autocommit psycopg connection and no thread
hand-off:

1. the person read — the very statement the portable path runs (compiled once from its
   SQLAlchemy form), so both paths see the same rows;
2. one statement that inserts the certificate, its dose-record links and the audit entry
   (data-modifying CTEs: all or nothing, as the portable path's single commit).

A refusal that names its details (pending dose numbers, open flag rules) reads them with one
more statement, as the portable path does. The resident session behind a bearer token is
looked up here too (:func:`session_principal`), with :mod:`vrs.domain.resident_auth`'s
answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Json
from sqlalchemy.dialects import postgresql

from keys import Signer
from vrs.domain import issuance
from vrs.domain.auth import Principal, Role, hash_token
from vrs.domain.errors import Unauthenticated
from vrs.domain.issuance import CertificateRequest, IssuedView, OpenFlagRule
from vrs.domain.resident_auth import SESSION_PREFIX

SESSION = """
SELECT id, my_number_hmac, birth_date, expires_at
  FROM resident_session WHERE token_hash = %(token_hash)s
"""

PENDING_DOSES = """
SELECT dose_number FROM dose_record
 WHERE status = 'pending'
   AND (municipality_code, coupon_number) IN
       (SELECT * FROM unnest(%(municipalities)s::text[], %(coupons)s::text[]))
"""

OPEN_FLAGS = """
SELECT rule_code, severity FROM quality_flag
 WHERE resolved_at IS NULL
   AND (municipality_code, dose_record_id) IN
       (SELECT * FROM unnest(%(municipalities)s::text[], %(ids)s::uuid[]))
"""

#: The certificate, its links and its audit entry in one statement (one round trip; the
#: statement is its own transaction on the autocommit connection).
STORE = """
WITH certificate AS (
    INSERT INTO certificate (
        municipality_code, uvci, resident_local_id, holder_my_number_hmac, kind, dose_number,
        issued_at, expires_at, kid, signature_hash, uci_hash, countrycode_uci_hash, hc1,
        channel, issued_by_credential_id, status)
    VALUES (
        %(municipality_code)s, %(uvci)s, %(resident_local_id)s, %(holder_my_number_hmac)s,
        %(kind)s, %(dose_number)s, %(issued_at)s, %(expires_at)s, %(kid)s,
        %(signature_hash)s, %(uci_hash)s, %(countrycode_uci_hash)s, %(hc1)s, %(channel)s,
        %(issued_by_credential_id)s, %(status)s)
), links AS (
    INSERT INTO certificate_dose_record (
        municipality_code, dose_record_id, uvci, certificate_municipality_code,
        dose_record_version)
    SELECT link.municipality_code, link.dose_record_id, %(uvci)s, %(municipality_code)s,
           link.version
      FROM unnest(%(link_municipalities)s::text[], %(link_ids)s::uuid[],
                  %(link_versions)s::integer[]) AS link(municipality_code, dose_record_id, version)
)
INSERT INTO audit_log (
    id, at, actor_credential_id, actor_role, action, municipality_code, subject, count,
    purpose, details)
VALUES (
    %(audit_id)s, %(at)s, %(actor_credential_id)s, %(actor_role)s, %(action)s,
    %(municipality_code)s, %(uvci)s, 1, NULL, %(details)s::json)
"""


@cache
def _person_statement() -> tuple[str, dict[str, Any]]:
    """The portable path's person read as PostgreSQL text, with its constant parameters."""
    compiled = issuance._signed_in_person().compile(
        dialect=postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    )
    return str(compiled), dict(compiled.params)


async def session_principal(conn: AsyncConnection[Any], token: str, now: datetime) -> Principal:
    """:func:`vrs.domain.resident_auth.authenticate_session`, read on ``conn``."""
    if not token.startswith(SESSION_PREFIX) or len(token) > 200:
        raise Unauthenticated("BAD_TOKEN", "the bearer token is not a resident session")
    cur = await conn.execute(SESSION, {"token_hash": hash_token(token)})
    row = await cur.fetchone()
    if row is None or row[3] <= now:
        raise Unauthenticated("SESSION_EXPIRED", "the session is unknown or expired; sign in again")
    session_id, key, birth_date, expires_at = row
    return Principal(
        credential_id=session_id,
        role=Role.RESIDENT,
        name="resident",
        resident_key=key,
        resident_birth_date=birth_date,
        expires_at=expires_at,
    )


async def issue_for_resident(
    conn: AsyncConnection[Any],
    *,
    actor: Principal,
    request: CertificateRequest,
    signer: Signer,
    now: datetime,
) -> IssuedView:
    """:func:`vrs.domain.issuance.issue_for_resident` on an autocommit connection."""
    issuance.check_resident_request(actor, request)
    sql, constants = _person_statement()
    params = {**constants, "key": actor.resident_key, "birth": actor.resident_birth_date}
    cur = await conn.execute(sql, params)
    person = issuance._person_from_rows(await cur.fetchall())
    issuance.check_signed_in_person(person)
    need_pending, need_flags = issuance.refusal_details(person)
    pending = await _pending_doses(conn, person) if need_pending else []
    flags = await _open_flags(conn, person) if need_flags else []
    settled = issuance.settle(person, request, None, pending_doses=pending, open_flags=flags)
    signed = issuance.sign(actor, person, settled, request, signer, now, issuance.CHANNEL_SELF)
    await conn.execute(STORE, _store_params(signed, actor, now))
    return signed.view


def _store_params(
    signed: issuance.SignedCertificate, actor: Principal, now: datetime
) -> dict[str, Any]:
    links = signed.links
    return {
        **signed.certificate,
        "link_municipalities": [link["municipality_code"] for link in links],
        "link_ids": [link["dose_record_id"] for link in links],
        "link_versions": [link["dose_record_version"] for link in links],
        "audit_id": uuid.uuid4(),
        "at": now,
        "actor_credential_id": actor.credential_id,
        "actor_role": actor.role.value,
        "action": issuance.ISSUE_ACTION,
        "details": Json(signed.audit_details),
    }


async def _pending_doses(conn: AsyncConnection[Any], person: issuance._Person) -> list[int]:
    rows = [r for r in person.rows if r.coupon_number]
    cur = await conn.execute(
        PENDING_DOSES,
        {
            "municipalities": [r.municipality_code for r in rows],
            "coupons": [r.coupon_number for r in rows],
        },
    )
    return [number for (number,) in await cur.fetchall()]


async def _open_flags(
    conn: AsyncConnection[Any], person: issuance._Person
) -> Sequence[OpenFlagRule]:
    records = [d.record for d in person.doses]
    cur = await conn.execute(
        OPEN_FLAGS,
        {
            "municipalities": [r.municipality_code for r in records],
            "ids": [r.id for r in records],
        },
    )
    return [(rule, severity) for rule, severity in await cur.fetchall()]
