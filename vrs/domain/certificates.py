"""Certificates: what was issued from which dose records, and their revocation.

Correcting or voiding a dose record revokes every certificate made from it
(:func:`revoke_for_dose_records`, called by the correction workflow inside its own
transaction); the revoked certificates' signature hashes then appear in the trust bundle's
revocation list, and the resident may have a new certificate issued.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session, col

from vrs.db.models import Certificate, CertificateDoseRecord
from vrs.domain import audit
from vrs.domain.auth import Principal, Role, require_municipality, require_role
from vrs.domain.errors import Unprocessable

STATUS_ACTIVE = "active"
STATUS_REVOKED = "revoked"

#: Longest revocation reason kept (the column's width).
MAX_REASON = 500

#: Ids per ``IN (...)`` list: well under every engine's bound-parameter limit.
_CHUNK = 500


def revoke_for_dose_records(
    session: Session,
    *,
    municipality_code: str,
    dose_record_ids: Sequence[uuid.UUID],
    reason: str,
    actor: Principal,
    now: datetime,
) -> int:
    """Revoke every active certificate made from any of these dose records; return how many.

    ``dose_record_ids`` are records of ``municipality_code`` (the records' municipality; a
    certificate issued elsewhere from them is found too). Each revocation is audit-logged.
    Nothing is committed: the caller's transaction (the correction or void) does that, so the
    record change and the revocation land together or not at all.
    """
    require_role(actor, Role.ADMIN, Role.MUNICIPALITY)
    require_municipality(actor, municipality_code)
    reason = reason.strip()
    if not reason:
        raise Unprocessable("MISSING_REASON", "a revocation needs a reason")
    reason = reason[:MAX_REASON]
    ids = list(dict.fromkeys(dose_record_ids))
    targets: dict[tuple[str, str], None] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = session.execute(
            select(col(Certificate.municipality_code), col(Certificate.uvci))
            .join(
                CertificateDoseRecord,
                (
                    col(CertificateDoseRecord.certificate_municipality_code)
                    == col(Certificate.municipality_code)
                )
                & (col(CertificateDoseRecord.uvci) == col(Certificate.uvci)),
            )
            .where(
                col(CertificateDoseRecord.municipality_code) == municipality_code,
                col(CertificateDoseRecord.dose_record_id).in_(chunk),
                col(Certificate.status) == STATUS_ACTIVE,
            )
        ).all()
        for cert_municipality, uvci in rows:
            targets[(cert_municipality, uvci)] = None
    for cert_municipality, uvci in targets:
        session.execute(
            update(Certificate)
            .where(
                col(Certificate.municipality_code) == cert_municipality,
                col(Certificate.uvci) == uvci,
                col(Certificate.status) == STATUS_ACTIVE,
            )
            .values(
                status=STATUS_REVOKED,
                revoked_at=now,
                revoked_reason=reason,
                revoked_by_credential_id=actor.credential_id,
            )
        )
        audit.record(
            session,
            actor,
            "certificate.revoke",
            now=now,
            municipality_code=cert_municipality,
            subject=uvci,
            count=1,
            purpose=reason,
            details={"dose_records_of": municipality_code},
        )
    return len(targets)
