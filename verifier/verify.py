"""``verify()``: run the checks over a decoded certificate. Pure: no I/O, time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from verifier.checks import CHECKS, ClaimsProblem, Context
from verifier.decode import Decoded, decode_text
from verifier.result import Holder, Status, VerificationResult
from verifier.trust import TrustStore

__all__ = ["DEFAULT_SKEW", "verify"]

#: Clock tolerance for "not yet valid" and "expired": device clocks drift.
DEFAULT_SKEW = timedelta(minutes=5)


def _holder(ctx: Context) -> Holder | None:
    try:
        dcc = ctx.claims().dcc
    except ClaimsProblem:
        return None
    names = dcc.get("nam") if isinstance(dcc.get("nam"), dict) else {}
    assert isinstance(names, dict)

    def text(value: object) -> str | None:
        return value if isinstance(value, str) else None

    dob = dcc.get("dob")
    holder = Holder(
        family_name=text(names.get("fn")),
        given_name=text(names.get("gn")),
        date_of_birth=dob if isinstance(dob, str) else "",
    )
    if ctx.mode.startswith("border:"):
        return Holder(
            holder.family_name,
            holder.given_name,
            holder.date_of_birth,
            text(names.get("fnt")),
            text(names.get("gnt")),
        )
    return holder


def verify(
    decoded: Decoded | str,
    *,
    trust: TrustStore,
    now: datetime,
    mode: str = "venue",
    skew: timedelta = DEFAULT_SKEW,
) -> VerificationResult:
    """Verify a decoded certificate (or an ``HC1:`` string) against ``trust`` at ``now``.

    ``mode`` picks the business rules: ``"venue"`` or ``"border:XX"``. The result is VALID only
    when every check passed; the holder's names and birth date are included only once the
    signature verified (and the standardised names only in a border mode).
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (UTC)")
    now = now.astimezone(UTC)
    if isinstance(decoded, str):
        decoded = decode_text(decoded)
    results = list(decoded.steps)
    failed = next((step for step in results if step.status is not Status.VALID), None)
    if failed is not None or decoded.sign1 is None:
        status = failed.status if failed is not None else Status.ERROR
        return VerificationResult(status, tuple(results), mode)
    ctx = Context(decoded.sign1, trust, now, mode, skew)
    status = Status.VALID
    for check in CHECKS:
        result = check(ctx)
        results.append(result)
        if result.status is not Status.VALID:
            status = result.status
            break
    holder = _holder(ctx) if ctx.signer is not None else None
    try:
        certificate_type = ctx.claims().certificate_type
    except ClaimsProblem:
        certificate_type = None
    return VerificationResult(status, tuple(results), mode, holder, certificate_type)
