"""Upload bodies too large for memory: streamed to an anonymous temporary file.

Imports (residents now, bulk dose records later) read their CSV body through
:func:`spooled_body` and hand the open file to a domain function that reads it line by line.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

CSV_MEDIA_TYPE = "text/csv"
#: ``openapi_extra`` of a route whose body is a CSV file.
CSV_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {"content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}}}
}

T = TypeVar("T")


def require_csv(request: Request) -> None:
    """Refuse (415) a body that does not say it is UTF-8 ``text/csv``."""
    media_type, _, params = request.headers.get("content-type", "").partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media_type.strip().lower() != CSV_MEDIA_TYPE or charset not in ("", "utf-8", "utf8"):
        raise HTTPException(415, "send the file as 'Content-Type: text/csv; charset=utf-8'")


@asynccontextmanager
async def spooled_body(request: Request, directory: Path) -> AsyncIterator[BinaryIO]:
    """The request body in a temporary file under ``directory``, open at its start.

    The file has no name on Linux and is gone when the block ends, however it ends (the
    size limit middleware aborts the stream of an over-large body with its own error).
    """
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=directory) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        yield spool


async def import_csv(
    request: Request,
    directory: Path,
    *,
    authorise: Callable[[], object],
    run: Callable[[BinaryIO], T],
) -> T:
    """The recipe every CSV import route follows, its blocking steps off the event loop:
    authorise first (nothing is read for a caller who may not import), then check the media
    type, spool the body under ``directory`` and run the import on the spooled file."""
    await run_in_threadpool(authorise)
    require_csv(request)
    async with spooled_body(request, directory) as body:
        return await run_in_threadpool(run, body)
