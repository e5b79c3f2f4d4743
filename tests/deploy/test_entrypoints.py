"""The image's entry points, run as compose and Kubernetes run them (without Docker): each starts,
answers /healthz against the test Kafka and PostgreSQL, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.deploy.manifests import SERVICE_PORT_SETTING, compose, compose_env, env_name
from tests.support.infra import TEST_JWT_SECRET, TEST_MASTER_KEY
from wf.procs import free_port
from wf.stack import SERVICES

GRACE_S = 5.0


def _argv(command: list[str]) -> list[str]:
    """The image's PATH puts the virtualenv first; here that is this interpreter's environment."""
    executable = {"python": sys.executable, "wf": str(Path(sys.executable).with_name("wf"))}
    return [executable.get(command[0], command[0]), *command[1:]]


def _env(service: str, infra, run_dir: Path, tag: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WF_")}
    env.update(compose_env(compose()["services"][service]))
    env.update(
        {
            # Production mode, as in Kubernetes: real secrets are required and nothing is generated.
            "WF_ENV": "production",
            "WF_DATABASE_URL": infra.database_url,
            "WF_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "WF_JWT_SECRET": TEST_JWT_SECRET,
            "WF_MASTER_KEY": TEST_MASTER_KEY,
            "WF_RUN_DIR": str(run_dir),
            # Shared test machine: loopback and free ports instead of 0.0.0.0:808x.
            "WF_API_HOST": "127.0.0.1",
            "WF_METRICS_HOST": "127.0.0.1",
            # Topics and consumer groups of their own, so no other test's messages are consumed.
            "WF_TOPIC_EVENTS": f"deploy-{tag}.events",
            "WF_TOPIC_RUNS": f"deploy-{tag}.runs",
            "WF_TOPIC_RESULTS": f"deploy-{tag}.results",
            "WF_TOPIC_DLQ": f"deploy-{tag}.dlq",
            "WF_CONSUMER_GROUP_PREFIX": f"deploy-{tag}",
            "WF_PARTITIONS_EVENTS": "2",
            "WF_PARTITIONS_RUNS": "2",
            "WF_PARTITIONS_RESULTS": "1",
            "WF_PARTITIONS_DLQ": "1",
            "WF_SHUTDOWN_GRACE_S": str(GRACE_S),
        }
    )
    return env


def _healthy(port: int) -> bool:
    """Started, alive and ready: /livez and /readyz answer 200, and /metrics is served there."""
    try:
        for path in ("/livez", "/readyz", "/metrics"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
                if response.status != 200:
                    return False
        return True
    except OSError:
        return False


def test_migrate_entry_point_applies_migrations(infra, tmp_path: Path):
    command = compose()["services"]["migrate"]["command"]
    result = subprocess.run(
        _argv(command),
        env=_env("migrate", infra, tmp_path, "migrate"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.timeout(300)
def test_service_entry_points_answer_healthz_and_stop_cleanly(infra, tmp_path: Path):
    tag = uuid.uuid4().hex[:8]
    started: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for name in SERVICES:
            port = free_port()
            env = _env(name, infra, tmp_path, tag)
            env[env_name(SERVICE_PORT_SETTING[name])] = str(port)
            probe_port = port
            if name == "api":  # the probes and /metrics are on a port of their own
                probe_port = free_port()
                env["WF_API_METRICS_PORT"] = str(probe_port)
            log = tmp_path / f"{name}.log"
            # cwd outside the repository, as in the image: nothing may depend on the source checkout.
            proc = subprocess.Popen(
                _argv(compose()["services"][name]["command"]),
                env=env,
                cwd=tmp_path,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            started[name] = (proc, probe_port, log)

        deadline = time.monotonic() + 90
        waiting = set(SERVICES)
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                proc, port, log = started[name]
                assert proc.poll() is None, (
                    f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
                if _healthy(port):
                    waiting.discard(name)
            time.sleep(0.3)
        assert not waiting, {n: started[n][2].read_text()[-2000:] for n in waiting}

        for proc, _, _ in started.values():
            proc.send_signal(signal.SIGTERM)
        for name, (proc, _, log) in started.items():
            # Within the grace period plus the time to leave the group and close connections.
            code = proc.wait(timeout=GRACE_S + 20)
            # uvicorn (the API) re-raises SIGTERM once its graceful shutdown is complete, so that
            # the exit status reports the signal; the consumer services return normally.
            clean = (0, -signal.SIGTERM) if name == "api" else (0,)
            assert code in clean, f"{name} exited with {code}:\n{log.read_text()[-3000:]}"
    finally:
        for proc, _, _ in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
