"""The vaccination record service: HTTP API, domain rules, persistence and the ``vrs`` CLI.

Build the service with ``create_app(Settings.from_env())`` (or run ``vrs serve``); nothing
here connects or reads the environment at import.
"""

from vrs.app import app_from_env, create_app
from vrs.db.engine import make_engine
from vrs.domain.errors import DomainError
from vrs.settings import Settings, SettingsError

__version__ = "0.1.0"

__all__ = [
    "DomainError",
    "Settings",
    "SettingsError",
    "__version__",
    "app_from_env",
    "create_app",
    "make_engine",
]
