"""Errors of the record service's domain layer.

Every error carries a stable ``code`` (upper-case, never reworded) and a ``kind`` that the
HTTP layer maps to a status. Tree::

    DomainError
    ├── Unauthenticated      (401)
    ├── Forbidden            (403)
    ├── NotFound             (404)
    ├── Conflict             (409)
    ├── Unprocessable        (422)
    ├── PayloadTooLarge      (413)
    ├── TooManyRequests      (429; ``retry_after`` seconds in the details)
    └── Unavailable          (503; the service is not configured for this)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UNPROCESSABLE = "unprocessable"
    TOO_LARGE = "too_large"
    TOO_MANY = "too_many"
    UNAVAILABLE = "unavailable"


class DomainError(Exception):
    kind = ErrorKind.UNPROCESSABLE

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class Unauthenticated(DomainError):
    kind = ErrorKind.UNAUTHENTICATED


class Forbidden(DomainError):
    kind = ErrorKind.FORBIDDEN


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND


class Conflict(DomainError):
    kind = ErrorKind.CONFLICT


class Unprocessable(DomainError):
    kind = ErrorKind.UNPROCESSABLE


class PayloadTooLarge(DomainError):
    kind = ErrorKind.TOO_LARGE


class TooManyRequests(DomainError):
    kind = ErrorKind.TOO_MANY


class Unavailable(DomainError):
    kind = ErrorKind.UNAVAILABLE
