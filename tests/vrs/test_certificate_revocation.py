"""Revoking the certificates made from corrected or voided dose records (both backends)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import NOW, World
from vrs.db.models import AuditLog, Certificate, CertificateDoseRecord
from vrs.domain.auth import SYSTEM, Principal, Role
from vrs.domain.certificates import revoke_for_dose_records
from vrs.domain.errors import Forbidden, Unprocessable


def _certificate(
    world: World, uvci: str, doses: list[uuid.UUID], *, municipality: str = "131016"
) -> None:
    with world.session() as s:
        s.add(
            Certificate(
                municipality_code=municipality,
                uvci=uvci,
                resident_local_id="R000000001",
                kind="domestic",
                dose_number=len(doses),
                issued_at=NOW,
                expires_at=NOW + timedelta(days=365),
                kid="00" * 8,
                signature_hash=uvci[-2:] * 16,
                uci_hash="11" * 16,
                countrycode_uci_hash="22" * 16,
                hc1="HC1:TEST",
                channel="self",
            )
        )
        for version, dose in enumerate(doses, start=1):
            s.add(
                CertificateDoseRecord(
                    municipality_code=municipality,
                    dose_record_id=dose,
                    uvci=uvci,
                    certificate_municipality_code=municipality,
                    dose_record_version=version,
                )
            )
        s.commit()


def _statuses(world: World) -> dict[str, str]:
    with world.session() as s:
        return {c.uvci: c.status for c in s.execute(select(Certificate)).scalars()}


def _staff(world: World, municipality: str) -> Principal:
    return Principal(
        credential_id=uuid.uuid4(),
        role=Role.MUNICIPALITY,
        name="staff",
        municipality_code=municipality,
    )


def test_every_certificate_made_from_the_records_is_revoked_once(world: World) -> None:
    dose1, dose2, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    _certificate(world, "URN:UVCI:01:JP:A1", [dose1])
    _certificate(world, "URN:UVCI:01:JP:A2", [dose1, dose2])
    _certificate(world, "URN:UVCI:01:JP:B3", [other])
    staff = _staff(world, "131016")
    later = NOW + timedelta(days=3)

    with world.session() as s:
        count = revoke_for_dose_records(
            s,
            municipality_code="131016",
            dose_record_ids=[dose1, dose1, uuid.uuid4()],
            reason="dose 1 date corrected",
            actor=staff,
            now=later,
        )
        s.commit()

    assert count == 2
    assert _statuses(world) == {
        "URN:UVCI:01:JP:A1": "revoked",
        "URN:UVCI:01:JP:A2": "revoked",
        "URN:UVCI:01:JP:B3": "active",
    }
    with world.session() as s:
        revoked = s.get(Certificate, ("131016", "URN:UVCI:01:JP:A2"))
        assert revoked is not None
        assert revoked.revoked_at == later
        assert revoked.revoked_reason == "dose 1 date corrected"
        assert revoked.revoked_by_credential_id == staff.credential_id
        audits = s.execute(
            select(AuditLog).where(AuditLog.action == "certificate.revoke")  # type: ignore[arg-type]
        ).scalars()
        assert sorted(a.subject or "" for a in audits) == ["URN:UVCI:01:JP:A1", "URN:UVCI:01:JP:A2"]

        # Already revoked: a second correction of the same record revokes nothing more.
        again = revoke_for_dose_records(
            s,
            municipality_code="131016",
            dose_record_ids=[dose1, dose2],
            reason="voided",
            actor=SYSTEM,
            now=later,
        )
        assert again == 0


def test_nothing_is_written_until_the_caller_commits(world: World) -> None:
    dose = uuid.uuid4()
    _certificate(world, "URN:UVCI:01:JP:C1", [dose])
    with world.session() as s:
        assert (
            revoke_for_dose_records(
                s,
                municipality_code="131016",
                dose_record_ids=[dose],
                reason="voided",
                actor=SYSTEM,
                now=NOW,
            )
            == 1
        )
        s.rollback()
    assert _statuses(world) == {"URN:UVCI:01:JP:C1": "active"}


def test_another_municipality_or_a_site_may_not_revoke(world: World) -> None:
    dose = uuid.uuid4()
    _certificate(world, "URN:UVCI:01:JP:D1", [dose])
    site = Principal(credential_id=uuid.uuid4(), role=Role.SITE, name="tablet", site_code="1")
    with world.session() as s:
        for actor, error in ((_staff(world, "131041"), Forbidden), (site, Forbidden)):
            with pytest.raises(error):
                revoke_for_dose_records(
                    s,
                    municipality_code="131016",
                    dose_record_ids=[dose],
                    reason="x",
                    actor=actor,
                    now=NOW,
                )
        with pytest.raises(Unprocessable) as blank:
            revoke_for_dose_records(
                s,
                municipality_code="131016",
                dose_record_ids=[dose],
                reason="  ",
                actor=SYSTEM,
                now=NOW,
            )
        assert blank.value.code == "MISSING_REASON"
    assert _statuses(world) == {"URN:UVCI:01:JP:D1": "active"}


def test_many_records_at_once(world: World) -> None:
    doses = [uuid.uuid4() for _ in range(1_200)]
    _certificate(world, "URN:UVCI:01:JP:E1", [doses[-1]])
    with world.session() as s:
        count = revoke_for_dose_records(
            s,
            municipality_code="131016",
            dose_record_ids=doses,
            reason="bulk void",
            actor=SYSTEM,
            now=NOW,
        )
        s.commit()
    assert count == 1
