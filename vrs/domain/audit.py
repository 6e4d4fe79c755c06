"""The audit log: every read of personal data, My Number look-up and credential operation.

Entries are added to the caller's session, so they commit (or roll back) with the work
they describe. They never hold a My Number.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from vrs.db.models import AuditLog

if TYPE_CHECKING:
    from vrs.domain.auth import Principal


def record(
    session: Session,
    actor: Principal,
    action: str,
    *,
    now: datetime,
    municipality_code: str | None = None,
    subject: str | None = None,
    count: int = 0,
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            at=now,
            actor_credential_id=actor.credential_id,
            actor_role=actor.role.value,
            action=action,
            municipality_code=municipality_code,
            subject=subject,
            count=count,
            purpose=purpose,
            details=details,
        )
    )
