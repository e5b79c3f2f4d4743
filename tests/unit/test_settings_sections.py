"""The per-service sections are views of the one settings object: the WF_* variables stay the contract,
and no default is written twice (the executor's actions take theirs from the executor section)."""

from __future__ import annotations

from dataclasses import asdict, fields

import pytest

from services.executor.actions.base import ActionSettings
from services.executor.service import action_settings
from shared.config import Settings, load_settings


def test_sections_read_the_flat_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WF_EXECUTOR_CONCURRENCY", "7")
    monkeypatch.setenv("WF_DISPATCHER_BATCH_MAX", "123")
    monkeypatch.setenv("WF_RETENTION_RUN_DAYS", "9")
    monkeypatch.setenv("WF_TWILIO_BASE_URL", "http://127.0.0.1:9/twilio")
    settings = load_settings()
    assert settings.executor.concurrency == 7
    assert settings.dispatcher.batch_max == 123
    assert settings.health.retention_run_days == 9
    assert settings.executor.actions.twilio_base_url == "http://127.0.0.1:9/twilio"
    assert action_settings(settings).twilio_base_url == "http://127.0.0.1:9/twilio"
    # the sections add no variables: the environment still round-trips
    environment = settings.as_environment()
    assert "WF_EXECUTOR" not in environment
    assert environment["WF_EXECUTOR_CONCURRENCY"] == "7"


def test_the_actions_settings_take_every_value_from_the_settings() -> None:
    settings = load_settings(http_timeout_s=3.0, dropbox_content_base_url="http://127.0.0.1:9/dropbox")
    built = action_settings(settings)
    assert asdict(settings.actions) == {
        name: value for name, value in asdict(built).items() if name in asdict(settings.actions)
    }
    assert built.http_timeout_s == 3.0
    # the one bound the actions keep as their own (not a WF_ variable)
    assert {f.name for f in fields(ActionSettings)} - set(Settings.model_fields) == {"max_retry_after_s"}


def test_the_actions_defaults_are_the_settings_defaults() -> None:
    """ActionSettings() (tests, tools) must not drift from the WF_* defaults."""
    defaults = ActionSettings()
    for name, value in asdict(defaults).items():
        if name in Settings.model_fields:
            assert Settings.model_fields[name].default == value, name
