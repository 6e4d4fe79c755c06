"""Decoding a certificate without keys: image → ``HC1:`` text → base45 → zlib → COSE_Sign1 → CWT.

:func:`decode` never raises for bad content: each stage it ran is a :class:`CheckResult`, and it
stops at the first that fails. Only an argument of a type it does not take raises
:class:`DecodeError`. The result feeds :func:`verifier.verify`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from certs import wire
from verifier.errors import DecodeError
from verifier.image import ImageProblem, is_image_bytes, read_qr_text
from verifier.result import Check, CheckResult, Code, Status

__all__ = ["MAX_TEXT_LENGTH", "Decoded", "decode", "decode_text", "json_value"]

#: A QR code holds at most 4,296 alphanumeric characters; anything much longer is not a DCC.
MAX_TEXT_LENGTH = 8 * 1024
#: A DCC inflates to well under 8 KiB; 64 KiB is a generous hard cap.
MAX_INFLATED = 64 * 1024
_CODES = {code.value: code for code in Code}


@dataclass(frozen=True, slots=True)
class Decoded:
    """What decoding got: the stages run, and the parts as far as they were reached."""

    steps: tuple[CheckResult, ...]
    text: str | None = None
    cose: bytes | None = None
    sign1: wire.Sign1 | None = None

    @property
    def ok(self) -> bool:
        return all(step.status is Status.VALID for step in self.steps) and self.sign1 is not None


def _fail(check: Check, code: str, message: str) -> CheckResult:
    known = _CODES.get(code, Code.CBOR_MALFORMED)
    if known in (Code.IMAGE_UNREADABLE, Code.NO_QR_FOUND):
        return CheckResult.error(check, known, message)
    return CheckResult.invalid(check, known, message)


def decode(data: str | bytes | bytearray | Path | np.ndarray[Any, Any]) -> Decoded:
    """Decode an ``HC1:`` string, its bytes, raw COSE bytes, or an image (path, bytes, array).

    A ``str`` that does not start with ``HC1:`` but names an existing file is read as that file.
    Bytes starting with an image signature are an image; bytes starting with ``HC1:`` are the
    text; other bytes are taken as a COSE_Sign1.
    """
    if isinstance(data, np.ndarray):
        return _from_image(data)
    if isinstance(data, Path):
        return _from_file(data)
    if isinstance(data, str):
        if not data.startswith(wire.HC1_PREFIX) and len(data) < 4096 and _is_file(data):
            return _from_file(Path(data))
        return _from_text(data, ())
    if isinstance(data, bytes | bytearray):
        raw = bytes(data)
        if is_image_bytes(raw):
            return _from_image(raw)
        if raw.startswith(wire.HC1_PREFIX.encode()):
            return _from_text(raw.decode("ascii", errors="replace"), ())
        return _from_cose(raw, ())
    raise DecodeError("INPUT_TYPE", f"cannot decode a {type(data).__name__}")


def decode_text(text: str) -> Decoded:
    """Decode an ``HC1:`` string only (never a file name): what :func:`verifier.verify` uses."""
    return _from_text(text, ())


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def _from_file(path: Path) -> Decoded:
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        step = CheckResult.error(Check.PREFIX, Code.IMAGE_UNREADABLE, f"cannot read: {exc}")
        return Decoded((step,))
    if is_image_bytes(head):
        return _from_image(path)
    if path.stat().st_size > MAX_TEXT_LENGTH:
        step = CheckResult.invalid(Check.PREFIX, Code.INPUT_TOO_LARGE, "file too long for a DCC")
        return Decoded((step,))
    return _from_text(path.read_bytes().decode("utf-8", errors="replace").strip(), ())


def _from_image(source: Path | bytes | np.ndarray[Any, Any]) -> Decoded:
    try:
        text = read_qr_text(source)
    except ImageProblem as problem:
        return Decoded((_fail(Check.IMAGE, problem.code, problem.message),))
    return _from_text(text, (CheckResult.valid(Check.IMAGE),))


def _from_text(text: str, steps: tuple[CheckResult, ...]) -> Decoded:
    if len(text) > MAX_TEXT_LENGTH:
        failed = CheckResult.invalid(Check.PREFIX, Code.INPUT_TOO_LARGE, "text too long for a DCC")
        return Decoded((*steps, failed), text=None)
    try:
        body = wire.hc1_strip(text)
    except wire.WireError as exc:
        return Decoded((*steps, _fail(Check.PREFIX, exc.code, exc.message)), text=text)
    steps = (*steps, CheckResult.valid(Check.PREFIX))
    try:
        compressed = wire.b45decode(body)
    except wire.WireError as exc:
        return Decoded((*steps, _fail(Check.BASE45, exc.code, exc.message)), text=text)
    steps = (*steps, CheckResult.valid(Check.BASE45))
    try:
        cose = wire.zlib_decompress(compressed, max_output=MAX_INFLATED)
    except wire.WireError as exc:
        return Decoded((*steps, _fail(Check.ZLIB, exc.code, exc.message)), text=text)
    decoded = _from_cose(cose, (*steps, CheckResult.valid(Check.ZLIB)))
    return Decoded(decoded.steps, text, decoded.cose, decoded.sign1)


def _from_cose(cose: bytes, steps: tuple[CheckResult, ...]) -> Decoded:
    try:
        sign1 = wire.parse_sign1(cose)
    except wire.WireError as exc:
        return Decoded((*steps, _fail(Check.COSE, exc.code, exc.message)), cose=cose)
    return Decoded((*steps, CheckResult.valid(Check.COSE, sign1.tagging)), cose=cose, sign1=sign1)


def json_value(value: Any) -> Any:
    """A decoded CBOR value as JSON would hold it (tag-0 date-times and dates become text)."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            return value.isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
