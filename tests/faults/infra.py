"""The fault suite's own PostgreSQL and Kafka, which its tests stop and start again.

They live under ``<WF_TEST_RUN_DIR>/faults`` so restarting them never disturbs the servers other
suites (or other engineers' sessions) use. Ports are kept across restarts, so services keep their URLs.
"""

from __future__ import annotations

import asyncio
import shutil
import signal

from shared.db.migrate import upgrade
from tests.support.infra import REPO, TEST_RUN_DIR, Infrastructure
from wf.kafka_local import LocalKafka
from wf.postgres_local import LocalPostgres
from wf.procs import stop_pid

FAULTS_HOME = TEST_RUN_DIR / "faults"


def start_restartable_infrastructure() -> Infrastructure:
    postgres = LocalPostgres(FAULTS_HOME / "postgres", fsync=False)
    kafka = LocalKafka(FAULTS_HOME / "kafka", cache_root=REPO / ".cache" / "kafka")
    postgres.stop()  # a leftover of a session killed before its teardown
    if (pid := kafka.running_pid()) is not None:
        stop_pid(pid, timeout=30)
    shutil.rmtree(FAULTS_HOME, ignore_errors=True)
    database_url = postgres.start()
    bootstrap = kafka.start()
    upgrade(database_url)
    return Infrastructure(database_url, bootstrap, postgres, kafka)


async def stop_postgres(infra: Infrastructure) -> None:
    """Fast shutdown: sessions are disconnected at once (SIGTERM would wait for every client to leave)."""
    assert infra.postgres is not None
    pid = infra.postgres.running_pid()
    assert pid is not None, "PostgreSQL is not running"
    await asyncio.to_thread(stop_pid, pid, timeout=30, sig=signal.SIGINT)


async def start_postgres(infra: Infrastructure) -> None:
    assert infra.postgres is not None
    url = await asyncio.to_thread(infra.postgres.start)
    assert url == infra.database_url, "PostgreSQL came back on another port"


async def stop_kafka(infra: Infrastructure) -> None:
    assert infra.kafka is not None
    pid = infra.kafka.running_pid()
    assert pid is not None, "Kafka is not running"
    await asyncio.to_thread(stop_pid, pid, timeout=30)


async def start_kafka(infra: Infrastructure) -> None:
    assert infra.kafka is not None
    bootstrap = await asyncio.to_thread(infra.kafka.start)
    assert bootstrap == infra.kafka_bootstrap
