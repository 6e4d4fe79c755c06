"""Every error leaves the service as ``application/problem+json`` with a stable ``code``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vrs.domain.errors import DomainError, ErrorKind

log = logging.getLogger("vrs.api")

PROBLEM_JSON = "application/problem+json"

_STATUS = {
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.UNPROCESSABLE: 422,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.TOO_MANY: 429,
    ErrorKind.UNAVAILABLE: 503,
}

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": code,
        "status": status,
        "code": code,
        "detail": detail,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def problem_document(exc: DomainError) -> dict[str, Any]:
    """The problem+json body of a domain error (for answers nested in a larger body)."""
    status = _STATUS[exc.kind]
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": exc.code,
        "status": status,
        "code": exc.code,
        "detail": exc.message,
    }
    body.update(_json_safe(exc.details))
    return body


def domain_error_response(exc: DomainError) -> JSONResponse:
    status = _STATUS[exc.kind]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429 and "retry_after" in exc.details:
        headers = {"Retry-After": str(int(exc.details["retry_after"]))}
    return problem(status, exc.code, exc.message, headers, **_json_safe(exc.details))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return domain_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "location": [str(p) for p in err.get("loc", ())],
                "code": str(err.get("type", "invalid")).upper(),
                "message": str(err.get("msg", "")),
            }
            for err in exc.errors()
        ]
        return problem(
            422, "INVALID_REQUEST", "the request does not have the expected form", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        return problem(
            exc.status_code, code, str(exc.detail), dict(exc.headers) if exc.headers else None
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(500, "INTERNAL_ERROR", "an unexpected error occurred; it has been logged")
