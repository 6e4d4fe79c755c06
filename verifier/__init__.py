"""Offline verifier for ``HC1:`` certificates: decode, check pipeline, trust store, rules.

    decoded = verifier.decode(qr_text_or_image)          # no keys, no trust needed
    trust = verifier.load_trust_bundle(bundle_bytes, pinned_key_pem)
    result = verifier.verify(decoded, trust=trust, now=now, mode="venue")
    result.status   # Status.VALID / INVALID / ERROR, result.code, result.checks, result.holder

``verify`` does no I/O; only :mod:`verifier.sync` touches the network. Exceptions (see
:mod:`verifier.errors`): ``VerifierError`` → ``DecodeError``, ``TrustBundleError``,
``SyncError``, ``CertLogicError``.
"""

from verifier.certlogic import CertLogicError
from verifier.decode import Decoded, decode
from verifier.errors import DecodeError, SyncError, TrustBundleError, VerifierError
from verifier.result import Check, CheckResult, Code, Holder, Status, VerificationResult
from verifier.trust import (
    Rule,
    TrustedSigner,
    TrustStore,
    load_pinned_key,
    load_trust_bundle,
    trust_from_certificates,
)
from verifier.verify import DEFAULT_SKEW, verify

__all__ = [
    "DEFAULT_SKEW",
    "CertLogicError",
    "Check",
    "CheckResult",
    "Code",
    "DecodeError",
    "Decoded",
    "Holder",
    "Rule",
    "Status",
    "SyncError",
    "TrustBundleError",
    "TrustStore",
    "TrustedSigner",
    "VerificationResult",
    "VerifierError",
    "decode",
    "load_pinned_key",
    "load_trust_bundle",
    "trust_from_certificates",
    "verify",
]
