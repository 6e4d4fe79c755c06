"""The minimal decoder is itself checked against third-party data: the EU member states'
test certificates that are tagged 18, ES256 and carry everything in the protected header."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.certs import minimal_decoder


def _candidates(shared_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((shared_dir / "conformance/dgc-testdata").rglob("*.json")):
        try:
            document = json.loads(path.read_text())
        except (UnicodeDecodeError, ValueError):
            continue
        if not isinstance(document, dict):
            continue
        expected = document.get("EXPECTEDRESULTS", {})
        context = document.get("TESTCTX", {})
        cose = document.get("COSE")
        # tag 18 (0xd2) around a 4-array (0x84): the COSE shape the minimal decoder reads
        if (
            expected.get("EXPECTEDVERIFY") is True
            and context.get("CERTIFICATE")
            and isinstance(cose, str)
            and cose.lower().startswith("d284")
            and str(document.get("PREFIX", "")).startswith("HC1:")
        ):
            found.append((str(path.relative_to(shared_dir)), document))
    return found


def test_the_minimal_decoder_verifies_the_eu_test_certificates(shared_dir: Path) -> None:
    checked = 0
    for name, document in _candidates(shared_dir):
        try:
            decoded = minimal_decoder.decode_hc1(document["PREFIX"])
        except AssertionError:
            continue  # outside the minimal decoder's subset (unprotected headers, floats, …)
        if decoded.protected.get(1) != -7:
            continue
        certificate = base64.b64decode(document["TESTCTX"]["CERTIFICATE"])
        minimal_decoder.verify(decoded, certificate)
        if "JSON" in document:
            assert decoded.hcert == document["JSON"], name
        checked += 1
    if checked == 0:
        pytest.fail("no EU test certificate fitted the minimal decoder")
    assert checked >= 20
