"""The HTTP API's OpenAPI document, as committed in ``docs/openapi.json``.

Built from a development app that never connects (the factory connects on first request
only), so the document depends on the code alone; ``vrs openapi FILE`` writes it and a test
checks the committed copy is current.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from vrs.app import create_app
from vrs.settings import Settings

__all__ = ["openapi_json"]


def openapi_json() -> str:
    """The OpenAPI document as stable, human-diffable JSON (sorted keys, two-space indent)."""
    with tempfile.TemporaryDirectory(prefix="vrs-openapi-") as folder:
        settings = Settings(
            database_url=f"sqlite:///{folder}/unused.db", data_dir=Path(folder), env="development"
        )
        app = create_app(settings)
        document = app.openapi()
        app.state.engine.dispose()
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
