"""The record service's API as the tablet uses it: dose posts and the masked coupon preview.

Plain HTTP through httpx (``scanner`` imports nothing from ``vrs``). The transport is a
parameter, so tests and other embedders can put their own in (a proxy, a socket option).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx

from scanner.outbox import DeliveryError

__all__ = [
    "DEFAULT_TIMEOUT",
    "ApiClient",
    "CouponPreview",
    "PreviewOutcome",
    "PreviewResult",
    "problem_code",
]

#: Connect quickly or give up (the site may be offline); a batch of 100 may take a while.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)
USER_AGENT = "vrs-scan/0.1"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def service_root(url: str, *, allow_insecure: bool = False) -> str:
    """The service's root URL (``https://vrs.example.jp``); a trailing ``/v1`` is dropped.

    The bearer token must not travel in clear, so ``http://`` is refused except to a loopback
    address, or when ``allow_insecure`` says so.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("BAD_API_URL", f"not an http(s) URL: {url!r}")
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(parts.hostname):
        raise DeliveryError(
            "INSECURE_API_URL",
            f"{url} would send the site's token unencrypted; use https (or --insecure on a "
            "closed test network)",
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def problem_code(response: httpx.Response) -> tuple[str, str, dict[str, Any]]:
    """``(code, detail, body)`` of an error answer; ``HTTP_<status>`` when it is not a problem
    document (a proxy's HTML page, say)."""
    body = _json_object(response)
    code = body.get("code")
    if not isinstance(code, str) or not code:
        code = f"HTTP_{response.status_code}"
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = response.reason_phrase or code
    return code, detail, body


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class PreviewOutcome(StrEnum):
    #: The service answered with the masked preview.
    SHOWN = "shown"
    #: No preview for this coupon: holder not registered yet, or protected (indistinguishable).
    UNAVAILABLE = "unavailable"
    #: The service refused the coupon itself (a bad check digit, an unknown municipality...).
    REFUSED = "refused"
    #: The service could not be asked (offline, timeout, 5xx) or refused the tablet's
    #: credential: the record is kept as unconfirmed.
    OFFLINE = "offline"


@dataclass(frozen=True)
class CouponPreview:
    """What staff see to confirm the coupon's holder; nothing else about the person."""

    municipality_code: str
    coupon_dose_number: int
    kana_initials: str
    birth_year_month: str
    recorded_doses: tuple[tuple[int, date], ...]


@dataclass(frozen=True)
class PreviewResult:
    outcome: PreviewOutcome
    preview: CouponPreview | None = None
    code: str | None = None
    detail: str | None = None


class ApiClient:
    """A tablet's session with the service: its site credential on every request."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        allow_insecure: bool = False,
    ) -> None:
        if not token or any(c.isspace() for c in token):
            raise DeliveryError("BAD_TOKEN", "the site token is empty or has spaces in it")
        self.base_url = service_root(base_url, allow_insecure=allow_insecure)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def post_record(self, body: dict[str, Any]) -> httpx.Response:
        """``POST /v1/dose-records``; transport failures raise ``httpx.TransportError``."""
        return self._http.post("/v1/dose-records", json=body)

    def post_batch(self, bodies: Sequence[dict[str, Any]]) -> httpx.Response:
        """``POST /v1/dose-records/batch`` (at most 1,000 records)."""
        return self._http.post("/v1/dose-records/batch", json={"records": list(bodies)})

    def preview(self, line: str) -> PreviewResult:
        """The masked preview of a coupon, or why there is none. Never raises for the network:
        a site that is offline gets ``OFFLINE``."""
        if not (len(line) == 18 and line.isascii() and line.isdigit()):
            return PreviewResult(
                PreviewOutcome.REFUSED, code="MALFORMED_COUPON", detail="not 18 digits"
            )
        try:
            response = self._http.get(f"/v1/coupons/{line}/preview")
        except httpx.TransportError as exc:
            return PreviewResult(PreviewOutcome.OFFLINE, code="OFFLINE", detail=_describe(exc))
        if response.status_code == 200:
            preview = _parse_preview(_json_object(response))
            if preview is not None:
                return PreviewResult(PreviewOutcome.SHOWN, preview=preview)
            return PreviewResult(
                PreviewOutcome.OFFLINE, code="BAD_ANSWER", detail="the preview was malformed"
            )
        code, detail, _body = problem_code(response)
        if response.status_code == 404 and code == "PREVIEW_UNAVAILABLE":
            return PreviewResult(PreviewOutcome.UNAVAILABLE, code=code, detail=detail)
        if response.status_code == 422:
            return PreviewResult(PreviewOutcome.REFUSED, code=code, detail=detail)
        return PreviewResult(PreviewOutcome.OFFLINE, code=code, detail=detail)


def _parse_preview(body: dict[str, Any]) -> CouponPreview | None:
    try:
        doses = tuple(
            (int(d["dose_number"]), date.fromisoformat(str(d["vaccinated_on"])))
            for d in body["recorded_doses"]
        )
        return CouponPreview(
            municipality_code=str(body["municipality_code"]),
            coupon_dose_number=int(body["coupon_dose_number"]),
            kana_initials=str(body["kana_initials"]),
            birth_year_month=str(body["birth_year_month"]),
            recorded_doses=doses,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
