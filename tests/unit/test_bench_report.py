"""bench/results/latest.json keeps the shape bench/README.md gives it, and the settings a test or
benchmark hands a child process read back as the same settings."""

from __future__ import annotations

import os

import orjson
import pytest
from pydantic import SecretStr

from bench import report
from bench.harness import PairedFigures
from shared.config import Settings


def test_dispatch_and_execute_figures_use_the_contract_keys_and_median_ratios(tmp_path):
    dispatch = PairedFigures([100.0, 300.0, 200.0], [400.0, 1000.0, 800.0])
    execute = PairedFigures([10.0, 30.0], [20.0, 40.0])
    results = {
        "machine": {"cpus": 2, "python": "3.11.7"},
        "dispatch": report.dispatch_json(100_000, dispatch),
        "execute": report.execute_json(20_000, execute, 64),
    }

    written = orjson.loads(report.write(results, tmp_path / "latest.json").read_bytes())

    assert written["dispatch"] == {
        "events": 100_000,
        "events_per_s": 200.0,
        "baseline_events_per_s": 800.0,
        "ratio": 0.25,
        "repetitions": [100.0, 300.0, 200.0],
        "baseline_repetitions": [400.0, 1000.0, 800.0],
    }
    assert {"runs", "runs_per_s", "baseline_per_s", "ratio"} <= written["execute"].keys()
    assert written["execute"]["ratio"] == pytest.approx(20.0 / 30.0, abs=1e-3)
    table = report.table(written)
    assert "dispatch" in table
    assert "0.25" in table


def test_a_missing_baseline_gives_ratio_zero_not_an_error():
    assert PairedFigures([5.0], []).ratio == 0.0


def test_settings_as_environment_read_back_are_the_same_settings(monkeypatch):
    settings = Settings(
        database_url="postgresql+psycopg://u@127.0.0.1:5/db",
        kafka_bootstrap="127.0.0.1:9",
        jwt_secret=SecretStr("j" * 40),
        master_key=SecretStr("bWFzdGVyLWtleS1vZi0zMi1ieXRlcy1leGFjdGx5ISE="),
        executor_concurrency=7,
    )
    for name in [k for k in os.environ if k.startswith("WF_")]:
        monkeypatch.delenv(name)
    for name, value in settings.as_environment().items():
        monkeypatch.setenv(name, value)

    assert Settings() == settings
