"""`make run` / `make up` / `make down`: the whole system as local processes, no Docker.

PostgreSQL and Kafka are started locally unless WF_DATABASE_URL / WF_KAFKA_BOOTSTRAP point at
existing ones. Every WF_* setting in the environment is passed to every service.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from wf.kafka_local import LocalKafka
from wf.postgres_local import LocalPostgres
from wf.procs import pid_alive, read_pid, stop_pid

SERVICES = ("api", "dispatcher", "executor", "health")
REPO = Path(__file__).resolve().parents[1]


def _run_dir() -> Path:
    return Path(os.environ.get("WF_RUN_DIR", REPO / ".run")).resolve()


def _say(message: str) -> None:
    print(f"[wf] {message}", flush=True)


def start_infrastructure(run_dir: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    if os.environ.get("WF_DATABASE_URL"):
        env["WF_DATABASE_URL"] = os.environ["WF_DATABASE_URL"]
    else:
        _say("starting embedded PostgreSQL")
        env["WF_DATABASE_URL"] = LocalPostgres(run_dir / "postgres").start()
    if os.environ.get("WF_KAFKA_BOOTSTRAP"):
        env["WF_KAFKA_BOOTSTRAP"] = os.environ["WF_KAFKA_BOOTSTRAP"]
    else:
        _say("starting local Kafka 4.1.1 (first run downloads its jars from Maven Central)")
        kafka = LocalKafka(run_dir / "kafka", cache_root=REPO / ".cache" / "kafka", fast_start=False)
        env["WF_KAFKA_BOOTSTRAP"] = kafka.start()
    return env


def _wait_http(url: str, timeout: float, pids: dict[str, int]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, pid in pids.items():
            if not pid_alive(pid):
                raise RuntimeError(f"{name} exited during start-up; see .run/logs/{name}.log")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def up(*, foreground: bool = False) -> int:
    run_dir = _run_dir()
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    (run_dir / "pids").mkdir(parents=True, exist_ok=True)
    if any(_service_pid(run_dir, s) for s in SERVICES):
        _say("already running (make down first)")
        return 1
    started = time.monotonic()
    env = {**os.environ, "WF_RUN_DIR": str(run_dir), **start_infrastructure(run_dir)}
    _say("applying migrations")
    subprocess.run([sys.executable, "-m", "wf.cli", "migrate"], env=env, check=True, cwd=REPO)
    pids: dict[str, int] = {}
    for name in SERVICES:
        log = (run_dir / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        (run_dir / "pids" / f"{name}.pid").write_text(str(proc.pid))
        pids[name] = proc.pid
    host = env.get("WF_API_HOST", "127.0.0.1")
    api_url = f"http://{host}:{env.get('WF_API_PORT', '8080')}"
    try:
        _wait_http(f"{api_url}/healthz", 120, pids)
        for name, key, default in (
            ("dispatcher", "WF_DISPATCHER_PORT", "8081"),
            ("executor", "WF_EXECUTOR_PORT", "8082"),
            ("health", "WF_HEALTH_PORT", "8083"),
        ):
            _wait_http(f"http://127.0.0.1:{env.get(key, default)}/healthz", 60, {name: pids[name]})
    except Exception:
        down()
        raise
    (run_dir / "stack.env").write_text(
        f"WF_API_URL={api_url}\nWF_KAFKA_BOOTSTRAP={env['WF_KAFKA_BOOTSTRAP']}\n"
        f"WF_DATABASE_URL={env['WF_DATABASE_URL']}\n"
    )
    _say(
        f"up in {time.monotonic() - started:.1f} s: API {api_url} (docs {api_url}/docs); "
        f"settings in {run_dir / 'stack.env'}; logs in {run_dir / 'logs'}"
    )
    if not foreground:
        return 0
    _say("running; Ctrl-C stops everything")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop:
            for name, pid in pids.items():
                if not pid_alive(pid):
                    _say(f"{name} stopped unexpectedly; see {run_dir / 'logs' / (name + '.log')}")
                    stop = True
            time.sleep(0.5)
    finally:
        down()
    return 0


def _service_pid(run_dir: Path, name: str) -> int | None:
    pid = read_pid(run_dir / "pids" / f"{name}.pid")
    return pid if pid is not None and pid_alive(pid) else None


def down() -> int:
    run_dir = _run_dir()
    for name in reversed(SERVICES):
        pid = _service_pid(run_dir, name)
        if pid is not None:
            _say(f"stopping {name}")
            stop_pid(pid, timeout=40)
        (run_dir / "pids" / f"{name}.pid").unlink(missing_ok=True)
    kafka = LocalKafka(run_dir / "kafka", cache_root=REPO / ".cache" / "kafka")
    kafka_pid = kafka.running_pid()
    if kafka_pid is not None:
        _say("stopping Kafka")
        stop_pid(kafka_pid, timeout=60)
    postgres = LocalPostgres(run_dir / "postgres")
    if postgres.running_pid() is not None:
        _say("stopping PostgreSQL")
        postgres.stop()
    (run_dir / "stack.env").unlink(missing_ok=True)
    return 0
