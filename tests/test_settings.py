"""Settings: read from the environment, refused loudly when invalid or unsafe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from app import create_app
from app.core.settings import (
    DEFAULT_SECRET_KEY,
    Settings,
    SettingsError,
    describe_validation_error,
    load_settings,
)

ROOT = Path(__file__).parents[1]
GOOD_KEY = "k" * 40


def test_defaults_are_the_embedded_development_set_up(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, instance_path=tmp_path)  # pyright: ignore[reportCallIssue]
    assert settings.app_env == "development"
    assert settings.redis_url == ""
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'app.db'}"
    assert settings.resolved_log_format == "text"


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "testing")
    monkeypatch.setenv("GUNICORN_WORKERS", "9")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    settings = load_settings()
    assert (settings.app_env, settings.gunicorn_workers, settings.redis_url) == (
        "testing",
        9,
        "redis://cache:6379/0",
    )


def test_values_come_from_a_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LOG_LEVEL=WARNING\nHEALTH_CHECK_TIMEOUT=0.5\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.log_level == "WARNING"
    assert settings.health_check_timeout == 0.5


def test_invalid_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "staging")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("Refusing to start: invalid setting APP_ENV:")
    assert "'staging'" in message


def test_every_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUNICORN_WORKERS", "0")
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "lots")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "GUNICORN_WORKERS" in message
    assert "MAX_CONTENT_LENGTH" in message


def test_secret_looking_values_are_not_echoed() -> None:
    class Secrets(BaseModel):
        api_key: int
        broker_url: int

    with pytest.raises(ValidationError) as caught:
        Secrets.model_validate({"api_key": "s3cr3t-value", "broker_url": "amqp://u:pw@h"})
    message = describe_validation_error(caught.value)
    assert "API_KEY" in message
    assert "BROKER_URL" in message
    assert "s3cr3t" not in message
    assert "pw@h" not in message


def test_empty_values_mean_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "")
    monkeypatch.setenv("GUNICORN_WORKERS", "")
    settings = load_settings()
    assert settings.log_format is None
    assert settings.gunicorn_workers == 2


def test_production_refuses_the_default_secret_key() -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY must be set"):
        load_settings(app_env="production", secret_key=DEFAULT_SECRET_KEY)


def test_production_refuses_a_missing_secret_key() -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY must be set"):
        load_settings(app_env="production")


def test_production_refuses_a_short_secret_key() -> None:
    with pytest.raises(SettingsError, match="at least 32 characters"):
        load_settings(app_env="production", secret_key="short")


def test_production_refuses_debug() -> None:
    with pytest.raises(SettingsError, match="DEBUG must be off in production"):
        load_settings(app_env="production", secret_key=GOOD_KEY, debug=True)


def test_production_logs_json_unless_told_otherwise() -> None:
    assert load_settings(app_env="production", secret_key=GOOD_KEY).resolved_log_format == "json"
    assert (
        load_settings(
            app_env="production", secret_key=GOOD_KEY, log_format="text"
        ).resolved_log_format
        == "text"
    )


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.app_env = "production"  # type: ignore[misc]


def test_start_up_with_a_bad_setting_exits_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": "", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", "import app.wsgi"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Refusing to start: invalid settings: SECRET_KEY must be set to a private random value"
        " in production"
    ]


def test_nothing_outside_the_settings_module_reads_the_environment() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "app").rglob("*.py"))
        if path.name != "settings.py"
        and re.search(r"os\.environ|os\.getenv|getenv\(", path.read_text())
    ]
    assert offenders == []


def test_env_example_documents_every_setting() -> None:
    # From "# === compose only" on: docker compose's own variables (tests/test_compose.py checks them).
    text = (ROOT / ".env.example").read_text().partition("# === compose only")[0]
    assert text != (ROOT / ".env.example").read_text(), "the compose section's marker is gone"
    documented = set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "notaurl", "invalid setting DATABASE_URL: not a SQLAlchemy URL"),
        ("REDIS_URL", "http://cache:6379", "invalid setting REDIS_URL: must start with redis://"),
        (
            "HEALTH_CHECK_TIMEOUT",
            "5",
            "invalid setting HEALTH_CHECK_TIMEOUT: Input should be less than or equal to 2",
        ),
        ("CACHE_PREFIX", "has space", "invalid setting CACHE_PREFIX"),
    ],
)
def test_bad_urls_and_bounds_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_instance_path_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SettingsError) as caught:
        create_app(load_settings(instance_path=blocker / "instance"))
    assert str(caught.value).startswith(
        "Refusing to start: invalid setting INSTANCE_PATH: cannot create"
    )
