"""One real PostgreSQL and one real Kafka broker per test session (started here unless
WF_DATABASE_URL / WF_KAFKA_BOOTSTRAP point at existing ones)."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

from shared.config import Environment, Settings
from shared.db.migrate import upgrade
from tests.support.kafka_tls import make_kafka_tls
from wf.infra import Infrastructure
from wf.kafka_local import LocalKafka
from wf.postgres_local import LocalPostgres
from wf.procs import stop_pid

REPO = Path(__file__).resolve().parents[2]
# WF_TEST_RUN_DIR lets several suites run side by side on one machine, each with its own servers.
TEST_RUN_DIR = Path(os.environ.get("WF_TEST_RUN_DIR", REPO / ".run" / "test")).resolve()
# Fixed test-only keys: never used outside the test suite.
TEST_JWT_SECRET = "test-only-jwt-secret-0123456789abcdef0123456789"
TEST_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()


def start_infrastructure() -> Infrastructure:
    database_url = os.environ.get("WF_DATABASE_URL", "")
    kafka_bootstrap = os.environ.get("WF_KAFKA_BOOTSTRAP", "")
    postgres = kafka = None
    if not database_url or not kafka_bootstrap:
        for name in ("postgres", "kafka"):
            _stop_leftover(TEST_RUN_DIR / name, name)
    if not database_url:
        shutil.rmtree(TEST_RUN_DIR / "postgres", ignore_errors=True)
        postgres = LocalPostgres(TEST_RUN_DIR / "postgres", fsync=False)
        database_url = postgres.start()
    if not kafka_bootstrap:
        shutil.rmtree(TEST_RUN_DIR / "kafka", ignore_errors=True)
        # The same broker also listens with SASL_SSL (tests/kafka/test_secured.py).
        tls = make_kafka_tls(TEST_RUN_DIR / "kafka" / "tls")
        kafka = LocalKafka(TEST_RUN_DIR / "kafka", cache_root=REPO / ".cache" / "kafka", secure=tls.listener)
        kafka_bootstrap = kafka.start()
    upgrade(database_url)
    return Infrastructure(database_url, kafka_bootstrap, postgres, kafka)


def _stop_leftover(home: Path, name: str) -> None:
    """A previous session killed before its teardown may have left a server running."""
    if name == "postgres":
        LocalPostgres(home).stop()
    else:
        pid = LocalKafka(home, cache_root=REPO / ".cache" / "kafka").running_pid()
        if pid is not None:
            stop_pid(pid, timeout=30)


def test_settings(infra: Infrastructure, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": Environment.testing,
        "database_url": infra.database_url,
        "kafka_bootstrap": infra.kafka_bootstrap,
        "jwt_secret": TEST_JWT_SECRET,
        "master_key": TEST_MASTER_KEY,
        "egress_allow_cidrs": "127.0.0.0/8",
        "log_json": True,
        "partitions_events": 4,
        "partitions_runs": 4,
        "partitions_results": 2,
        "partitions_dlq": 1,
        "scheduler_interval_s": 0.2,
        "unpublished_grace_s": 3.0,
        "executor_lease_s": 10.0,
        "shutdown_grace_s": 10.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
