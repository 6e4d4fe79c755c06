"""What a verification says: per-check results with stable codes, and the overall verdict.

Every check gives VALID, INVALID(code) — the certificate is not acceptable — or ERROR(code) — the
verifier could not decide (stale trust, a rule that does not evaluate, a DSC it cannot read).
"Could not decide" is never reported as valid or as invalid. docs/verifier.md lists every code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Check", "CheckResult", "Code", "Holder", "Status", "VerificationResult"]


class Status(StrEnum):
    VALID = "VALID"
    INVALID = "INVALID"
    ERROR = "ERROR"


class Check(StrEnum):
    """The checks, in the order the pipeline runs them."""

    IMAGE = "image"
    PREFIX = "prefix"
    BASE45 = "base45"
    ZLIB = "zlib"
    COSE = "cose"
    TRUST = "trust"
    ALG = "alg"
    KID = "kid"
    SIGNATURE = "signature"
    DSC = "dsc"
    CWT = "cwt"
    EXPIRY = "expiry"
    SCHEMA = "schema"
    VALUE_SETS = "value_sets"
    REVOCATION = "revocation"
    RULES = "rules"


class Code(StrEnum):
    """Stable result codes (the meaning of each is in docs/verifier.md)."""

    # decoding
    INPUT_TOO_LARGE = "INPUT_TOO_LARGE"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    IMAGE_UNREADABLE = "IMAGE_UNREADABLE"
    NO_QR_FOUND = "NO_QR_FOUND"
    PREFIX_INVALID = "PREFIX_INVALID"
    BASE45_INVALID = "BASE45_INVALID"
    ZLIB_INVALID = "ZLIB_INVALID"
    ZLIB_TRUNCATED = "ZLIB_TRUNCATED"
    COMPRESSION_BOMB = "COMPRESSION_BOMB"
    CBOR_MALFORMED = "CBOR_MALFORMED"
    CBOR_TRUNCATED = "CBOR_TRUNCATED"
    CBOR_TRAILING = "CBOR_TRAILING"
    CBOR_TOO_DEEP = "CBOR_TOO_DEEP"
    CBOR_TOO_LARGE = "CBOR_TOO_LARGE"
    COSE_TAG = "COSE_TAG"
    COSE_STRUCTURE = "COSE_STRUCTURE"
    COSE_HEADER = "COSE_HEADER"
    # trust material
    TRUST_STALE = "TRUST_STALE"
    TRUST_NOT_YET_VALID = "TRUST_NOT_YET_VALID"
    # signature
    ALG_MISSING = "ALG_MISSING"
    ALG_UNSUPPORTED = "ALG_UNSUPPORTED"
    KID_MISSING = "KID_MISSING"
    KID_UNKNOWN = "KID_UNKNOWN"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    # document signer certificate
    DSC_NOT_YET_VALID = "DSC_NOT_YET_VALID"
    DSC_EXPIRED = "DSC_EXPIRED"
    DSC_KEY_USAGE = "DSC_KEY_USAGE"
    DSC_EXTENSIONS_UNPARSABLE = "DSC_EXTENSIONS_UNPARSABLE"
    # CWT claims and time
    CWT_INVALID = "CWT_INVALID"
    CWT_CLAIM_TYPE = "CWT_CLAIM_TYPE"
    HCERT_MISSING = "HCERT_MISSING"
    CERTIFICATE_TYPE_UNKNOWN = "CERTIFICATE_TYPE_UNKNOWN"
    CERT_EXPIRED = "CERT_EXPIRED"
    CERT_NOT_YET_VALID = "CERT_NOT_YET_VALID"
    CERT_OUTSIDE_DSC_VALIDITY = "CERT_OUTSIDE_DSC_VALIDITY"
    # content
    SCHEMA_INVALID = "SCHEMA_INVALID"
    SCHEMA_VERSION_UNKNOWN = "SCHEMA_VERSION_UNKNOWN"
    VALUE_NOT_IN_SET = "VALUE_NOT_IN_SET"
    VALUE_SETS_UNAVAILABLE = "VALUE_SETS_UNAVAILABLE"
    REVOKED = "REVOKED"
    REVOCATIONS_UNAVAILABLE = "REVOCATIONS_UNAVAILABLE"
    # business rules
    MODE_UNKNOWN = "MODE_UNKNOWN"
    NO_RULES = "NO_RULES"
    RULE_FAILED = "RULE_FAILED"
    RULE_EVALUATION_ERROR = "RULE_EVALUATION_ERROR"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome; ``code`` is None exactly when the check is VALID."""

    check: Check
    status: Status
    code: Code | None = None
    detail: str = ""

    @classmethod
    def valid(cls, check: Check, detail: str = "") -> CheckResult:
        return cls(check, Status.VALID, None, detail)

    @classmethod
    def invalid(cls, check: Check, code: Code, detail: str) -> CheckResult:
        return cls(check, Status.INVALID, code, detail)

    @classmethod
    def error(cls, check: Check, code: Code, detail: str) -> CheckResult:
        return cls(check, Status.ERROR, code, detail)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check.value,
            "status": self.status.value,
            "code": self.code.value if self.code else None,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Holder:
    """The holder data a mode shows: names and date of birth, nothing else."""

    family_name: str | None
    given_name: str | None
    date_of_birth: str
    # standardised (ICAO 9303) names, for comparing with a passport: border modes only
    family_name_standardised: str | None = None
    given_name_standardised: str | None = None

    def display_name(self) -> str:
        parts = [self.family_name, self.given_name]
        text = " ".join(part for part in parts if part)
        if text:
            return text
        std = [self.family_name_standardised, self.given_name_standardised]
        return " ".join(part for part in std if part)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "family_name": self.family_name,
            "given_name": self.given_name,
            "date_of_birth": self.date_of_birth,
        }
        if self.family_name_standardised is not None or self.given_name_standardised is not None:
            data["family_name_standardised"] = self.family_name_standardised
            data["given_name_standardised"] = self.given_name_standardised
        return data


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The verdict of :func:`verifier.verify`.

    ``status`` is VALID only when every check ran and was VALID; otherwise it is the status of
    the first check that was not, and ``code`` its code. ``holder`` is present only once the
    signature has been verified (unverified data is never shown as a person's).
    """

    status: Status
    checks: tuple[CheckResult, ...]
    mode: str
    holder: Holder | None = None
    certificate_type: str | None = None  # "v", "t" or "r"

    @property
    def code(self) -> Code | None:
        for result in self.checks:
            if result.status is not Status.VALID:
                return result.code
        return None

    @property
    def failed(self) -> CheckResult | None:
        for result in self.checks:
            if result.status is not Status.VALID:
                return result
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "code": self.code.value if self.code else None,
            "mode": self.mode,
            "certificate_type": self.certificate_type,
            "holder": self.holder.to_json() if self.holder else None,
            "checks": [result.to_json() for result in self.checks],
        }
