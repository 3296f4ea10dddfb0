"""Production refuses unsafe settings with a one-line reason, and so does the app factory."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
from pydantic import ValidationError

from clarity.app import create_app
from clarity.config import (
    DEFAULT_BLIND_INDEX_KEYS,
    DEFAULT_ENCRYPTION_KEYS,
    DEFAULT_SECRET_KEY,
    Environment,
    Settings,
    UnsafeConfiguration,
)
from clarity.crypto.fields import new_key

SAFE: dict[str, Any] = {
    "environment": "production",
    "secret_key": "k" * 48,
    "encryption_keys": "prod1:" + new_key(),
    "blind_index_keys": "prodi1:" + new_key(),
    "research_key": "r" * 40,
    "database_url": "postgresql+asyncpg://clarity@db.internal:5432/clarity",
    "cors_origins": ["https://app.example.org"],
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test sets counts: no CLARITY_* variables from the shell."""
    for name in list(os.environ):
        if name.startswith("CLARITY_"):
            monkeypatch.delenv(name)


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **{**SAFE, **overrides})


def refusal(s: Settings) -> str:
    with pytest.raises(UnsafeConfiguration) as caught:
        s.check_production()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("refusing to start in production: ")
    return message


def test_safe_production_settings_pass() -> None:
    s = settings()
    assert s.environment is Environment.production
    assert s.unsafe_reasons() == []
    s.check_production()


def test_default_secret_key_is_refused() -> None:
    message = refusal(settings(secret_key=DEFAULT_SECRET_KEY))
    assert "CLARITY_SECRET_KEY is the development default" in message
    assert DEFAULT_SECRET_KEY not in message


def test_short_secret_key_is_refused() -> None:
    assert "shorter than 32 characters" in refusal(settings(secret_key="k" * 31))
    settings(secret_key="k" * 32).check_production()


def test_sqlite_is_refused() -> None:
    assert "SQLite" in refusal(settings(database_url="sqlite+aiosqlite:///./clarity.db"))


def test_wildcard_cors_is_refused() -> None:
    assert "CLARITY_CORS_ORIGINS contains '*'" in refusal(settings(cors_origins=["*"]))


def test_every_reason_is_given_on_one_line() -> None:
    message = refusal(
        settings(secret_key=DEFAULT_SECRET_KEY, database_url="sqlite://", cors_origins=["*"])
    )
    for variable in ("CLARITY_SECRET_KEY", "CLARITY_DATABASE_URL", "CLARITY_CORS_ORIGINS"):
        assert variable in message


def test_unsafe_settings_are_allowed_outside_production() -> None:
    settings(
        environment="development", secret_key="short", database_url="sqlite://"
    ).check_production()


def test_cors_origins_parse_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLARITY_CORS_ORIGINS", "a,b")
    assert Settings(_env_file=None).cors_origins == ["a", "b"]
    monkeypatch.setenv("CLARITY_CORS_ORIGINS", " https://a.example , https://b.example ,")
    s = Settings(_env_file=None)
    assert s.cors_origins == ["https://a.example", "https://b.example"]


def test_app_refuses_to_start_with_default_production_settings() -> None:
    with pytest.raises(UnsafeConfiguration) as caught:
        create_app(Settings(_env_file=None, environment="production"))
    message = str(caught.value)
    assert "\n" not in message
    assert "CLARITY_SECRET_KEY" in message
    assert "SQLite" in message


def test_development_encryption_keys_are_refused() -> None:
    message = refusal(
        settings(encryption_keys=DEFAULT_ENCRYPTION_KEYS, blind_index_keys=DEFAULT_BLIND_INDEX_KEYS)
    )
    assert "CLARITY_ENCRYPTION_KEYS" in message
    assert "CLARITY_BLIND_INDEX_KEYS" in message


def test_alert_escalation_policy_is_checked_when_settings_are_read() -> None:
    from clarity.alerts.escalation import DEFAULT_POLICY, EscalationPolicy

    assert Settings().alert_escalation == DEFAULT_POLICY
    policy = EscalationPolicy.parse(Settings(alert_escalation="warning=2h").alert_escalation)
    assert policy.after == {"warning": dt.timedelta(hours=2)}
    with pytest.raises(ValidationError, match="unknown severity"):
        Settings(alert_escalation="urgent=5m")
    with pytest.raises(ValidationError, match="duration for high"):
        Settings(alert_escalation="high=soon")
