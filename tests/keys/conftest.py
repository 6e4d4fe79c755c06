"""A SoftHSM2 token for the PKCS#11 tests, made once per test session in a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keys import Pkcs11KeyStore, find_softhsm_module

TOKEN_LABEL = "vrs-test"
USER_PIN = "246810"
SO_PIN = "13579111"


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    token_label: str
    pin: str

    def store(self) -> Pkcs11KeyStore:
        return Pkcs11KeyStore(self.module, self.token_label, self.pin)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    module = find_softhsm_module()
    tool = shutil.which("softhsm2-util")
    if module is None or tool is None:
        reason = "SoftHSM2 is not installed (Debian: apt-get install softhsm2)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; .ci/run installs it, so CI must run the PKCS#11 tests")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    config = folder / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {folder / 'tokens'}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
    )
    # SoftHSM reads its configuration when the module is first initialised in this process;
    # the variable stays set for the session (a module is initialised once per process).
    os.environ["SOFTHSM2_CONF"] = str(config)
    subprocess.run(  # noqa: S603 - fixed arguments
        [
            tool,
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--pin",
            USER_PIN,
            "--so-pin",
            SO_PIN,
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(config)},
    )
    yield SoftHsm(module, TOKEN_LABEL, USER_PIN)
