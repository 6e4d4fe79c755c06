"""The one KID definition."""

from __future__ import annotations

import hashlib

import pytest

from keys import KID_LENGTH, kid_of


def test_kid_is_the_first_eight_bytes_of_the_sha256_of_the_der() -> None:
    der = b"\x30\x82\x01\x00" + bytes(range(256))
    assert kid_of(der) == hashlib.sha256(der).digest()[:8]
    assert len(kid_of(der)) == KID_LENGTH == 8


@pytest.mark.parametrize("bad", [b"", "text", None])
def test_kid_needs_der_bytes(bad: object) -> None:
    with pytest.raises(ValueError, match="DER"):
        kid_of(bad)  # type: ignore[arg-type]
