"""UVCIs: our format, and the Luhn mod N checksum against the member states' published ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certs import UvciError, is_valid_uvci, luhn_mod_n, new_uvci
from certs.uvci import CODE_POINTS, OPAQUE_ALPHABET

# Identifiers copied from the EU dgc-testdata certificates (AT, GR, HU, IS, LT, SI, SM files);
# the test below re-reads them from ../shared when it is there.
KNOWN = [
    "URN:UVCI:01:AT:10807843F94AEE0EE5093FBC254BD813#B",
    "URN:UVCI:01:AT:858CC18CFCF5965EF82F60E493349AA5#K",
    "URN:UVCI:01:GR:KOTFPYPGVQOUE3QQ3XFOECLAS4#0",
    "URN:UVCI:01:HU:242100001023540659V1T20210614180542#S",
    "URN:UVCI:01:IS:VERA1234#F",
    "URN:UVCI:01:LT:1227GNXXUEM92NY8J44JW#0",
    "URN:UVCI:01:SI:C5A831C188A043AEE053#8",
    "URN:UVCI:01:SM:121#O",
]
# Countries whose test files carry a checksum that follows the guidelines. Others (FI, IE, RO,
# LU, BG, …) use other alphabets or none: the README warns the checksum is unreliable there.
CONFORMING = {"AT", "GR", "HU", "IS", "LT", "SI", "SM"}


@pytest.mark.parametrize("uvci", KNOWN)
def test_the_checksum_of_published_identifiers(uvci: str) -> None:
    body, _, check = uvci.rpartition("#")
    assert luhn_mod_n(body) == check


def test_every_conforming_identifier_in_the_eu_test_data(shared_dir: Path) -> None:
    found: list[str] = []
    for country in sorted(CONFORMING):
        for path in sorted((shared_dir / "conformance/dgc-testdata" / country).rglob("*.json")):
            document: Any = json.loads(path.read_text())
            payload = document.get("JSON") if isinstance(document, dict) else None
            for kind in ("v", "t", "r"):
                for entry in (payload or {}).get(kind) or []:
                    if entry.get("ci", "").startswith("URN:UVCI:") and "#" in entry["ci"]:
                        found.append(entry["ci"])
    assert len(found) >= 20
    for uvci in found:
        body, _, check = uvci.rpartition("#")
        assert luhn_mod_n(body) == check, uvci


def test_a_new_uvci_has_our_form_and_a_good_checksum() -> None:
    uvci = new_uvci()
    assert uvci.startswith("URN:UVCI:01:JP:VRS/")
    assert is_valid_uvci(uvci)
    opaque = uvci.split("/")[1].split("#")[0]
    assert len(opaque) == 20 and set(opaque) <= set(OPAQUE_ALPHABET)
    assert len({new_uvci() for _ in range(1000)}) == 1000


def test_the_opaque_part_and_issuer_can_be_given() -> None:
    assert new_uvci("131016", opaque="ABC123").startswith("URN:UVCI:01:JP:131016/ABC123#")


@given(st.text(st.sampled_from(CODE_POINTS), min_size=1, max_size=40))
def test_the_checksum_catches_every_single_character_error(opaque: str) -> None:
    body = f"URN:UVCI:01:JP:{opaque}"
    check = luhn_mod_n(body)
    for index in range(len(body)):
        for replacement in CODE_POINTS:
            if replacement != body[index]:
                wrong = body[:index] + replacement + body[index + 1 :]
                assert luhn_mod_n(wrong) != check


@pytest.mark.parametrize(
    "uvci",
    [
        "",
        "URN:UVCI:01:JP:VRS/ABC",  # no checksum
        "URN:UVCI:01:JP:VRS/ABC#Z",  # wrong checksum
        "urn:uvci:01:jp:vrs/abc#0",
        "URN:UVCI:02:JP:VRS/ABC#0",
        "URN:UVCI:01:JP:" + "A" * 80 + "#0",
        None,
        12,
    ],
)
def test_invalid_identifiers_are_not_valid(uvci: Any) -> None:
    assert not is_valid_uvci(uvci)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"issuer": ""}, "BAD_UVCI_PART"),
        ({"issuer": "vrs"}, "BAD_UVCI_PART"),
        ({"issuer": "A/B"}, "BAD_UVCI_PART"),
        ({"country": "JPN"}, "BAD_UVCI_PART"),
        ({"opaque": "abc"}, "BAD_UVCI_PART"),
        ({"opaque": "A" * 41}, "BAD_UVCI_PART"),
    ],
)
def test_bad_parts_are_refused(kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(UvciError) as caught:
        new_uvci(**kwargs)
    assert caught.value.code == code


def test_the_checksum_refuses_characters_outside_its_alphabet() -> None:
    with pytest.raises(UvciError) as caught:
        luhn_mod_n("URN:UVCI:01:JP:abc")
    assert caught.value.code == "BAD_UVCI"


def test_a_trailing_newline_is_not_a_valid_uvci_part() -> None:
    assert not is_valid_uvci(new_uvci() + "\n")
    with pytest.raises(UvciError):
        new_uvci("VRS\n")


@pytest.mark.parametrize("text", [None, b"URN:UVCI:01", 12])
def test_the_checksum_of_something_that_is_not_text_is_refused(text: Any) -> None:
    with pytest.raises(UvciError):
        luhn_mod_n(text)
