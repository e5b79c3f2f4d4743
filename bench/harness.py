"""The bench's infrastructure and process plumbing: a dedicated PostgreSQL + Kafka, settings as WF_*
environment variables, services as real OS processes, and the repetition/median helpers.

Every figure is a ratio against a baseline measured in the same run, interleaved (A B B A ...), so
that noise from other work on the machine lands on both sides.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.config import Environment, Settings
from shared.db.migrate import upgrade
from wf.infra import Infrastructure
from wf.kafka_local import LocalKafka
from wf.postgres_local import LocalPostgres
from wf.procs import free_port, port_open, stop_pid

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = Path(os.environ.get("WF_BENCH_RUN_DIR", REPO / ".run" / "bench")).resolve()
RESULTS = REPO / "bench" / "results"
# Bench-only keys, never used elsewhere.
BENCH_JWT_SECRET = "bench-only-jwt-secret-0123456789abcdef0123456789"
BENCH_MASTER_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def start_infrastructure() -> Infrastructure:
    """A fresh PostgreSQL and Kafka under .run/bench (or the ones WF_DATABASE_URL/WF_KAFKA_BOOTSTRAP name)."""
    database_url = os.environ.get("WF_DATABASE_URL", "")
    kafka_bootstrap = os.environ.get("WF_KAFKA_BOOTSTRAP", "")
    postgres = kafka = None
    if not database_url:
        postgres = LocalPostgres(RUN_DIR / "postgres")
        postgres.stop()
        shutil.rmtree(RUN_DIR / "postgres", ignore_errors=True)
        # Durable settings as in production (fsync on): the figures include the cost of commits.
        database_url = postgres.start()
    if not kafka_bootstrap:
        kafka = LocalKafka(
            RUN_DIR / "kafka", cache_root=REPO / ".cache" / "kafka", fast_start=False, heap="1g"
        )
        if (pid := kafka.running_pid()) is not None:
            stop_pid(pid, timeout=30)
        shutil.rmtree(RUN_DIR / "kafka", ignore_errors=True)
        kafka_bootstrap = kafka.start()
    upgrade(database_url)
    return Infrastructure(database_url, kafka_bootstrap, postgres, kafka)


def bench_settings(infra: Infrastructure, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": Environment.development,
        "database_url": infra.database_url,
        "kafka_bootstrap": infra.kafka_bootstrap,
        "jwt_secret": BENCH_JWT_SECRET,
        "master_key": BENCH_MASTER_KEY,
        "egress_allow_cidrs": "127.0.0.0/8",
        "consumer_group_prefix": "bench",
        "topic_events": "bench.events",
        "topic_runs": "bench.runs",
        "topic_results": "bench.results",
        "topic_dlq": "bench.dlq",
    }
    values.update(overrides)
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a service process gets: this one's minus WF_*, then every setting as WF_<NAME>."""
    return {**settings_env_plain(), **settings.as_environment(), "WF_RUN_DIR": str(RUN_DIR)}


@dataclass
class Process:
    """A child process (a service or a baseline) with its output in .run/bench/logs."""

    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)

    def start(self) -> Process:
        logs = RUN_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{self.name}-{time.time_ns()}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if self.name in os.environ.get("BENCH_PROFILE", "").split(","):
            self._profile()
        return self

    def _profile(self) -> None:
        """BENCH_PROFILE=dispatcher,executor: py-spy samples the process for its whole life (collapsed
        stacks in .run/bench/profiles, for speedscope or a quick sort by count)."""
        spy = Path(sys.executable).parent / "py-spy"
        out = RUN_DIR / "profiles" / f"{self.name}-{time.time_ns()}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
                *(["--idle"] if os.environ.get("BENCH_PROFILE_IDLE") else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    async def result(self, timeout: float) -> dict[str, Any]:
        """Wait for a baseline process to finish; its last output line is its JSON result."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name} did not finish within {timeout:.0f} s; see {self.log_path}")
            await asyncio.sleep(0.2)
        lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.startswith("{")]
        if self.proc.returncode != 0 or not lines:
            raise RuntimeError(f"{self.name} failed ({self.proc.returncode}); see {self.log_path}")
        return dict(orjson.loads(lines[-1]))


def service(name: str, settings: Settings, **extra_env: str) -> Process:
    """``python -m services.<name>``: the command line production runs."""
    env = settings_env(settings)
    # Side ports (and the API port) of their own, never the defaults a `make up` elsewhere may hold.
    env[f"WF_{name.upper()}_PORT"] = str(free_port())
    if name == "api":
        env["WF_API_METRICS_PORT"] = str(free_port())
    env.update(extra_env)
    return Process(name, [sys.executable, "-m", f"services.{name}"], env)


def bench_process(name: str, module: str, *args: str, env: dict[str, str] | None = None) -> Process:
    return Process(name, [sys.executable, "-m", module, *args], env or settings_env_plain())


def settings_env_plain() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("WF_")}


async def wait_port(port: int, process: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port):
        process.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.name} did not listen on {port} within {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
    what: str,
    watch: Sequence[Process] = (),
    interval: float = 0.5,
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        for process in watch:
            process.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        await asyncio.sleep(interval)


def engine_for(url: str) -> AsyncEngine:
    return create_async_engine(url, pool_size=4, max_overflow=4)


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def execute(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


def create_database(infra: Infrastructure, name: str) -> str:
    """A fresh, migrated database on the same server (the scale points); synchronous: use a thread."""
    from sqlalchemy import create_engine

    base = infra.database_url.rsplit("/", 1)[0]
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"{base}/{name}"
    upgrade(url)
    return url


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


@dataclass
class PairedFigures:
    """A figure and its baseline, one value per repetition each (measured alternately)."""

    service_per_s: list[float] = field(default_factory=list)
    baseline_per_s: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """The median of the per-repetition ratios: each pair was measured back to back, so a slow
        moment of the machine lands on both halves of a ratio rather than on one median."""
        pairs = [s / b for s, b in zip(self.service_per_s, self.baseline_per_s, strict=False) if b]
        return median(pairs) if pairs else 0.0

    def as_json(self, measured: str, baseline: str) -> dict[str, Any]:
        """The contract's medians and ratio under the given keys, plus every repetition."""
        return {
            measured: round(median(self.service_per_s), 1),
            baseline: round(median(self.baseline_per_s), 1),
            "ratio": round(self.ratio, 3),
            "ratio_of_medians": round(median(self.service_per_s) / base, 3)
            if (base := median(self.baseline_per_s))
            else 0.0,
            "repetitions": [round(v, 1) for v in self.service_per_s],
            "baseline_repetitions": [round(v, 1) for v in self.baseline_per_s],
        }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return float(ordered[rank - 1])
