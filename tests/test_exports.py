"""Every package's ``__all__`` names exist, and every package ships ``py.typed``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

PACKAGES = ["vrs", "scanner", "certs", "verifier", "keys"]


@pytest.mark.parametrize("package", PACKAGES)
def test_exported_names_exist(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    assert isinstance(exported, list)
    assert len(exported) == len(set(exported)), "a name is exported twice"
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("package", PACKAGES)
def test_package_is_marked_typed(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert (Path(module.__file__).parent / "py.typed").is_file()


def test_the_service_api_is_exported_from_vrs() -> None:
    import vrs

    assert {"create_app", "app_from_env", "Settings", "SettingsError", "make_engine"} <= set(
        vrs.__all__
    )
