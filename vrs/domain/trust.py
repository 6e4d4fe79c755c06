"""The trust bundle the service publishes (format v1, docs/trust-bundle.md).

What goes in is decided here: the DSCs the key ring lists now, the value sets made from our
vaccine products (plus the disease and country codes our certificates use), the business
rules of each check mode (``rules_data/*.json``, CertLogic we wrote), and the signature and
UVCI hashes of every revoked certificate. :mod:`certs.trustbundle` builds and signs it.

A publication is stored (``trust_publication``) so every worker serves the same bytes and
ETag. A new one, with the next sequence number, is made when the listed DSCs, the revocations
or the rules change, or when the current one is within :attr:`TrustPublisher.refresh_before`
of its ``valid_until``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from certs import trustbundle
from certs.trustbundle import BundleDsc, Revocations
from vrs.db.models import Certificate, TrustPublication, VaccineProduct
from vrs.domain.certificates import STATUS_REVOKED
from vrs.domain.keyring import ServiceKeys

ISSUER = "JP"
#: Value-set date of the code lists made here (bump when their content changes).
VALUE_SET_DATE = "2023-01-01"
COVID_19 = "840539006"

#: Displays of the EU value-set codes our products carry (the EU value sets' own texts).
_MANUFACTURERS = {
    "ORG-100030215": "Biontech Manufacturing GmbH",
    "ORG-100031184": "Moderna Biotech Spain S.L.",
    "ORG-100001699": "AstraZeneca AB",
    "ORG-100032020": "Novavax CZ a.s.",
    "ORG-100001417": "Janssen-Cilag International",
}
_PROPHYLAXES = {
    "1119349007": "SARS-CoV-2 mRNA vaccine",
    "29061000087103": "COVID-19 non-replicating viral vector vaccine",
    "1162643001": "SARS-CoV-2 recombinant spike protein antigen vaccine",
}
_SNOMED = "http://snomed.info/sct"
_EU_REGISTER = "https://ec.europa.eu/health/documents/community-register/html/"
_SPOR = "https://spor.ema.europa.eu/v1/organisations"
_ISO_3166 = "urn:iso:std:iso:3166"

#: Check mode -> rules file in ``vrs/domain/rules_data``.
RULE_FILES = {"venue": "venue.json", "border:DE": "border-DE.json"}


@cache
def business_rules() -> dict[str, list[dict[str, Any]]]:
    """The CertLogic rules of each check mode, as shipped with the package."""
    folder = resources.files("vrs.domain") / "rules_data"
    return {
        mode: json.loads((folder / name).read_text(encoding="utf-8"))
        for mode, name in RULE_FILES.items()
    }


def _value_set(set_id: str, system: str, displays: dict[str, str]) -> dict[str, Any]:
    return {
        "valueSetId": set_id,
        "valueSetDate": VALUE_SET_DATE,
        "valueSetValues": {
            code: {"display": text, "lang": "en", "active": True, "version": "", "system": system}
            for code, text in sorted(displays.items())
        },
    }


def value_sets(session: Session) -> dict[str, Any]:
    """The value sets a verifier checks our vaccination certificates against.

    Products, manufacturers and prophylaxes come from ``vaccine_product``. Only ``JP`` is in
    the country list: the bundle carries only our DSCs, and ``co`` of what they sign is JP.
    """
    products = list(session.execute(select(VaccineProduct)).scalars())
    return {
        "disease-agent-targeted": _value_set(
            "disease-agent-targeted", _SNOMED, {COVID_19: "COVID-19"}
        ),
        "vaccines-covid-19-names": _value_set(
            "vaccines-covid-19-names", _EU_REGISTER, {p.code: p.name for p in products}
        ),
        "vaccines-covid-19-auth-holders": _value_set(
            "vaccines-covid-19-auth-holders",
            _SPOR,
            {
                p.manufacturer_code: _MANUFACTURERS.get(p.manufacturer_code, p.manufacturer_code)
                for p in products
            },
        ),
        "sct-vaccines-covid-19": _value_set(
            "sct-vaccines-covid-19",
            _SNOMED,
            {
                p.prophylaxis_code: _PROPHYLAXES.get(p.prophylaxis_code, p.prophylaxis_code)
                for p in products
            },
        ),
        "country-2-codes": _value_set("country-2-codes", _ISO_3166, {"JP": "Japan"}),
    }


def revocations(session: Session) -> Revocations:
    rows = session.execute(
        select(
            col(Certificate.signature_hash),
            col(Certificate.uci_hash),
            col(Certificate.countrycode_uci_hash),
        ).where(col(Certificate.status) == STATUS_REVOKED)
    ).all()
    return Revocations(
        signature=[bytes.fromhex(r[0]) for r in rows],
        uci=[bytes.fromhex(r[1]) for r in rows],
        countrycode_uci=[bytes.fromhex(r[2]) for r in rows],
    )


def _revocation_probe(session: Session) -> str:
    count, latest = session.execute(
        select(func.count(), func.max(col(Certificate.revoked_at))).where(
            col(Certificate.status) == STATUS_REVOKED
        )
    ).one()
    return f"{count}@{latest.isoformat() if latest is not None else '-'}"


@dataclass(frozen=True)
class PublishedBundle:
    sequence: int
    data: bytes
    etag: str
    issued_at: datetime
    valid_until: datetime
    state: str


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest() + '"'


class TrustPublisher:
    """Builds, stores and caches the current trust bundle for one worker."""

    def __init__(
        self,
        keys: ServiceKeys,
        *,
        validity: timedelta = timedelta(days=2),
        refresh_before: timedelta = timedelta(days=1),
    ) -> None:
        self.keys = keys
        self.validity = validity
        self.refresh_before = refresh_before
        self._cached: PublishedBundle | None = None
        self._lock = threading.Lock()

    def _state(self, session: Session, now: datetime) -> str:
        ring = self.keys.ring(now)
        listed = ",".join(d.kid.hex() for d in ring.listed_dscs(now))
        rules = hashlib.sha256(json.dumps(business_rules(), sort_keys=True).encode()).hexdigest()[
            :16
        ]
        return f"dsc={listed};rev={_revocation_probe(session)};rules={rules}"[:200]

    def _fresh(self, bundle: PublishedBundle | None, state: str, now: datetime) -> bool:
        return (
            bundle is not None
            and bundle.state == state
            and now < bundle.valid_until - self.refresh_before
        )

    def current(self, session: Session, now: datetime) -> PublishedBundle:
        """The bundle to serve at ``now``, publishing a new one when something changed."""
        state = self._state(session, now)
        cached = self._cached
        if self._fresh(cached, state, now):
            assert cached is not None
            return cached
        with self._lock:
            for _attempt in range(3):
                latest = _latest(session)
                if self._fresh(latest, state, now):
                    assert latest is not None
                    self._cached = latest
                    return latest
                sequence = 1 if latest is None else latest.sequence + 1
                bundle = self._build(session, sequence, state, now)
                try:
                    session.add(
                        TrustPublication(
                            sequence=bundle.sequence,
                            issued_at=bundle.issued_at,
                            valid_until=bundle.valid_until,
                            state=bundle.state,
                            etag=bundle.etag,
                            data=bundle.data,
                        )
                    )
                    session.commit()
                except IntegrityError:
                    session.rollback()  # another worker published this sequence first
                    continue
                self._cached = bundle
                return bundle
        raise RuntimeError("could not publish a trust bundle")  # pragma: no cover

    def _build(self, session: Session, sequence: int, state: str, now: datetime) -> PublishedBundle:
        ring = self.keys.ring(now)
        issued_at = now.replace(microsecond=0)
        valid_until = issued_at + self.validity
        payload = trustbundle.bundle_payload(
            sequence=sequence,
            issued_at=issued_at,
            valid_until=valid_until,
            dscs=[BundleDsc(d.certificate.der, country=ISSUER) for d in ring.listed_dscs(now)],
            cscas=[ring.csca.der],
            value_sets=value_sets(session),
            rules=business_rules(),
            revocations=revocations(session),
            issuer=ISSUER,
        )
        data = trustbundle.sign_bundle(payload, self.keys.bundle_signer(now))
        return PublishedBundle(
            sequence=sequence,
            data=data,
            etag=etag_of(data),
            issued_at=issued_at,
            valid_until=valid_until,
            state=state,
        )


def _latest(session: Session) -> PublishedBundle | None:
    row = session.execute(
        select(TrustPublication).order_by(col(TrustPublication.sequence).desc()).limit(1)
    ).scalar_one_or_none()
    if row is None:
        return None
    return PublishedBundle(
        sequence=row.sequence,
        data=row.data,
        etag=row.etag,
        issued_at=row.issued_at,
        valid_until=row.valid_until,
        state=row.state,
    )
