"""The per-service sections are views of the one settings object: the WF_* variables stay the contract,
and no default is written twice (the executor's actions read the executor section's ``ActionSection``)."""

from __future__ import annotations

import pytest

from shared.config import load_settings


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
    # the sections add no variables: the environment still round-trips
    environment = settings.as_environment()
    assert "WF_EXECUTOR" not in environment
    assert environment["WF_EXECUTOR_CONCURRENCY"] == "7"


def test_the_actions_take_every_variable_and_keep_their_own_bound() -> None:
    settings = load_settings(http_timeout_s=3.0, dropbox_content_base_url="http://127.0.0.1:9/dropbox")
    actions = settings.executor.actions
    assert actions.http_timeout_s == 3.0
    assert actions.dropbox_content_base_url == "http://127.0.0.1:9/dropbox"
    assert actions.max_retry_after_s == 600.0  # not a WF_ variable
