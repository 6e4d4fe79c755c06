"""Service settings, read from the environment by :meth:`Settings.from_env`.

Nothing here runs at import time: the caller builds a ``Settings`` and hands it to
``create_app`` or the CLI.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: The development My Number key. It is public (it is in this file), so production refuses it.
DEV_MY_NUMBER_KEY = "development-only-my-number-hmac-key-do-not-use-in-production"

ENVIRONMENTS = ("development", "test", "production")


class SettingsError(ValueError):
    """The environment does not describe a runnable service (stable ``code`` attribute)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    database_url: str = "sqlite:///./var/vrs.db"
    data_dir: Path = Path("./var")
    env: str = "development"
    my_number_hmac_key: bytes = field(default=DEV_MY_NUMBER_KEY.encode(), repr=False)
    #: Largest CSV body accepted by the import endpoints, in bytes.
    max_import_bytes: int = 2 * 1024**3
    #: Longest line accepted in an import CSV, in bytes (a hostile 10 MB line is refused).
    max_csv_line_bytes: int = 64 * 1024
    #: How many bad rows an import's 422 response lists (the total is always given).
    max_reported_errors: int = 10_000
    #: On PostgreSQL, take tablets' posts through the asynchronous psycopg path
    #: (``VRS_INGEST_FAST_PATH=0`` falls back to the portable SQLAlchemy path).
    ingest_fast_path: bool = True
    #: On PostgreSQL, issue residents' certificates (and read their sessions) through the
    #: asynchronous psycopg path (``VRS_CERTIFICATE_FAST_PATH=0``: the portable path).
    certificate_fast_path: bool = True
    #: PEM certificate of the card issuer whose cards residents sign in with
    #: (``VRS_CARD_ISSUER_CERT``). Unset outside production: the development card issuer
    #: under ``data_dir`` (made by ``vrs dev make-card``).
    card_issuer_cert: Path | None = None

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``VRS_*`` variables; raise :class:`SettingsError` on a bad combination."""
        env_vars = os.environ if environ is None else environ
        env = env_vars.get("VRS_ENV", "development").strip().lower()
        if env not in ENVIRONMENTS:
            raise SettingsError(
                "BAD_ENV", f"VRS_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}"
            )
        data_dir = Path(env_vars.get("VRS_DATA_DIR", "./var"))
        database_url = env_vars.get("VRS_DATABASE_URL", f"sqlite:///{data_dir}/vrs.db")
        key_text = env_vars.get("VRS_MY_NUMBER_HMAC_KEY", "")
        if env == "production":
            if not key_text or key_text == DEV_MY_NUMBER_KEY:
                raise SettingsError(
                    "MISSING_SECRET",
                    "VRS_ENV=production needs VRS_MY_NUMBER_HMAC_KEY set to a secret of at least "
                    "32 characters (the development default is refused)",
                )
            if len(key_text) < 32:
                raise SettingsError(
                    "WEAK_SECRET", "VRS_MY_NUMBER_HMAC_KEY must be at least 32 characters long"
                )
        key = (key_text or DEV_MY_NUMBER_KEY).encode()
        kwargs: dict[str, object] = {}
        for name, var in (
            ("max_import_bytes", "VRS_MAX_IMPORT_BYTES"),
            ("max_csv_line_bytes", "VRS_MAX_CSV_LINE_BYTES"),
            ("max_reported_errors", "VRS_MAX_REPORTED_ERRORS"),
        ):
            if var in env_vars:
                try:
                    kwargs[name] = int(env_vars[var])
                except ValueError:
                    raise SettingsError("BAD_SETTING", f"{var} must be an integer") from None
        for name, var in (
            ("ingest_fast_path", "VRS_INGEST_FAST_PATH"),
            ("certificate_fast_path", "VRS_CERTIFICATE_FAST_PATH"),
        ):
            switch = env_vars.get(var, "1").strip().lower()
            if switch not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise SettingsError("BAD_SETTING", f"{var} must be 1 or 0")
            kwargs[name] = switch in ("1", "true", "yes", "on")
        if env_vars.get("VRS_CARD_ISSUER_CERT"):
            kwargs["card_issuer_cert"] = Path(env_vars["VRS_CARD_ISSUER_CERT"])
        return cls(
            database_url=database_url,
            data_dir=data_dir,
            env=env,
            my_number_hmac_key=key,
            **kwargs,  # type: ignore[arg-type]
        )


def generate_secret() -> str:
    """A fresh random secret suitable for ``VRS_MY_NUMBER_HMAC_KEY``."""
    return secrets.token_urlsafe(48)
