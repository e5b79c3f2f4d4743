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
        "ratio_of_medians": 0.25,
        "repetitions": [100.0, 300.0, 200.0],
        "baseline_repetitions": [400.0, 1000.0, 800.0],
    }
    assert {"runs", "runs_per_s", "baseline_per_s", "ratio"} <= written["execute"].keys()
    # The median of the per-repetition ratios (10/20, 30/40), not the ratio of the medians (20/30).
    assert written["execute"]["ratio"] == pytest.approx(0.625, abs=1e-3)
    assert written["execute"]["ratio_of_medians"] == pytest.approx(20.0 / 30.0, abs=1e-3)
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


def test_the_latency_breakdown_gives_each_stage_the_time_since_the_previous_point():
    from bench.latency import STAGES, stage_figures

    # Two events, each point 1 ms (1,000 µs) after the previous, one with a slow sink hop; a third
    # event without the executor's stamps is left out rather than counted as zero.
    fast = {stage: 1_000 * i for i, stage in enumerate(STAGES)}
    slow = {**fast, "sink.received": fast["request.started"] + 9_000}
    partial = {k: v for k, v in fast.items() if not k.startswith("executor")}

    figures = stage_figures([fast, slow, partial])

    assert figures["sampled"] == 2
    assert list(figures["stages"]) == [f"{a} -> {b}" for a, b in zip(STAGES, STAGES[1:], strict=False)]
    assert figures["stages"]["produced -> dispatcher.fetched"] == {"p50_ms": 1.0, "p99_ms": 1.0}
    assert figures["stages"]["request.started -> sink.received"]["p99_ms"] == 9.0
    assert figures["total"]["p99_ms"] == 17.0


def test_a_stage_stamp_is_one_line_of_stage_key_and_microseconds(tmp_path):
    import subprocess
    import sys
    import time

    log = tmp_path / "stages.log"
    before = time.time_ns() // 1000
    subprocess.run(
        [sys.executable, "-c", "from shared import probes; probes.stamp('executor.fetched', 42)"],
        env={**os.environ, "WF_STAGE_LOG": str(log)},
        check=True,
    )
    stage, key, at = log.read_text().split()
    assert (stage, key) == ("executor.fetched", "42")
    assert before <= int(at) <= time.time_ns() // 1000
