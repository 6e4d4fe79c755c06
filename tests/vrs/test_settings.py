"""What the environment may and may not say: production refuses development secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from vrs.settings import DEV_MY_NUMBER_KEY, Settings, SettingsError, generate_secret

STRONG = "x" * 32


def test_development_needs_nothing_and_keeps_its_data_under_var() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert not settings.is_production
    assert settings.data_dir == Path("var")
    assert settings.database_url == "sqlite:///var/vrs.db"
    assert settings.my_number_hmac_key == DEV_MY_NUMBER_KEY.encode()


def test_the_data_dir_moves_the_default_database() -> None:
    settings = Settings.from_env({"VRS_DATA_DIR": "/srv/vrs"})
    assert settings.database_url == "sqlite:////srv/vrs/vrs.db"


def test_an_explicit_database_url_wins() -> None:
    url = "postgresql://vrs@db.internal:5432/vrs"
    assert Settings.from_env({"VRS_DATABASE_URL": url, "VRS_DATA_DIR": "/x"}).database_url == url


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (None, "MISSING_SECRET"),
        ("", "MISSING_SECRET"),
        (DEV_MY_NUMBER_KEY, "MISSING_SECRET"),
        ("x" * 31, "WEAK_SECRET"),
    ],
)
def test_production_refuses_a_missing_default_or_short_secret(key: str | None, code: str) -> None:
    environ = {"VRS_ENV": "production"}
    if key is not None:
        environ["VRS_MY_NUMBER_HMAC_KEY"] = key
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    assert caught.value.code == code
    assert "VRS_MY_NUMBER_HMAC_KEY" in str(caught.value)


def test_production_runs_with_a_real_secret() -> None:
    secret = generate_secret()
    settings = Settings.from_env({"VRS_ENV": " Production ", "VRS_MY_NUMBER_HMAC_KEY": secret})
    assert settings.is_production
    assert settings.my_number_hmac_key == secret.encode()
    assert secret not in repr(settings)


def test_generated_secrets_are_long_enough_and_differ() -> None:
    assert len(generate_secret()) >= 32
    assert generate_secret() != generate_secret()


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"VRS_ENV": "staging"})
    assert caught.value.code == "BAD_ENV"


def test_limits_are_read_as_integers() -> None:
    settings = Settings.from_env(
        {
            "VRS_MAX_IMPORT_BYTES": "1048576",
            "VRS_MAX_CSV_LINE_BYTES": "4096",
            "VRS_MAX_REPORTED_ERRORS": "50",
        }
    )
    assert (
        settings.max_import_bytes,
        settings.max_csv_line_bytes,
        settings.max_reported_errors,
    ) == (1048576, 4096, 50)


@pytest.mark.parametrize(
    "variable", ["VRS_MAX_IMPORT_BYTES", "VRS_MAX_CSV_LINE_BYTES", "VRS_MAX_REPORTED_ERRORS"]
)
@pytest.mark.parametrize("value", ["2GB", "", "1.5"])
def test_a_limit_that_is_not_an_integer_is_refused(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.code == "BAD_SETTING"
    assert variable in str(caught.value)


FAST_PATHS = [
    ("VRS_INGEST_FAST_PATH", "ingest_fast_path"),
    ("VRS_CERTIFICATE_FAST_PATH", "certificate_fast_path"),
]


@pytest.mark.parametrize(("variable", "attribute"), FAST_PATHS)
@pytest.mark.parametrize(("value", "expected"), [("1", True), ("0", False), ("off", False)])
def test_each_fast_path_can_be_switched_off_on_its_own(
    variable: str, attribute: str, value: str, expected: bool
) -> None:
    settings = Settings.from_env({variable: value})
    assert getattr(settings, attribute) is expected
    other = next(a for v, a in FAST_PATHS if v != variable)
    assert getattr(settings, other) is True
    assert getattr(Settings.from_env({}), attribute) is True


@pytest.mark.parametrize(("variable", "attribute"), FAST_PATHS)
def test_a_bad_fast_path_switch_is_refused(variable: str, attribute: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: "maybe"})
    assert caught.value.code == "BAD_SETTING"
    assert variable in str(caught.value)
