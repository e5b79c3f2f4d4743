"""The shape every consumer service (dispatcher, executor, health) shares; each fills in the hooks.

Start: ``prepare`` (the database handles: created, not waited for), then the side server (/livez,
/readyz, /healthz, /metrics: alive while waiting for dependencies, /readyz naming why Kafka cannot be
used yet: kafka_tls, kafka_authentication...), then the wait for Kafka, the topics, and ``begin``,
which creates the producer, the consumer and its loop and returns the long-running tasks (the
consumer loop first).

Stop, with one drain budget for all three: the loop stops fetching and its in-flight work gets
``WF_SHUTDOWN_GRACE_S`` to finish (the loops bound their own wait by it), then ``STOP_MARGIN_S``
more for the final offset commit; whatever is still running then is cancelled (its offsets are
not committed, so the next owner re-reads it). The other tasks are cancelled at once. Then the
consumer leaves its group (its partitions move at once), the producer flushes, ``release`` closes
the service's own resources, the side server stops and the database engine is disposed.

/readyz: database, kafka, the Kafka status checks, consumer_loop (its heartbeat younger than 30 s
and its last fetch or batch succeeded), then the service's ``extra_checks``. /livez: consumer_loop
(heartbeat younger than LIVENESS_STALL_S; alive while not started yet, since a restart cannot cure
an outage or a refused login), then ``extra_liveness``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from shared.db.engine import database_ready
from shared.kafka.clients import kafka_reachable
from shared.kafka.connection import KafkaStatus, wait_for_kafka
from shared.kafka.topics import ensure_topics
from shared.service_main import wait_for_failure
from shared.sidecar import LIVENESS_STALL_S, SideServer

# After the drain budget, the time the loop gets for its final commit before it is cancelled.
STOP_MARGIN_S = 5.0
# A loop whose heartbeat is older than this is not ready (liveness waits LIVENESS_STALL_S).
READY_STALL_S = 30.0


class ConsumerLoop(Protocol):
    heartbeat: float

    @property
    def healthy(self) -> bool: ...

    async def run(self) -> None: ...

    def stop(self) -> None: ...


class ConsumerService:
    def __init__(self, settings: Settings, side_port: int) -> None:
        self.settings = settings
        self.side_port = side_port
        self.engine: AsyncEngine | None = None
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.loop: ConsumerLoop | None = None
        self.side: SideServer | None = None
        self.kafka_status = KafkaStatus()
        self._tasks: list[asyncio.Task[None]] = []  # the consumer loop's first

    # hooks
    async def prepare(self) -> None:
        """Create the database handles (``self.engine``) before the side server starts."""
        raise NotImplementedError

    async def begin(self) -> list[asyncio.Task[None]]:
        """Kafka is usable: start producer, consumer and loop; return the tasks, the loop's first."""
        raise NotImplementedError

    async def release(self) -> None:
        """Close what the service opened beside the engine, producer and consumer."""
        return None

    async def extra_checks(self) -> dict[str, bool]:
        return {}

    def extra_liveness(self, now: float) -> dict[str, bool]:
        return {}

    # the shared shape
    async def start(self) -> None:
        settings = self.settings
        settings.require_infrastructure()
        await self.prepare()
        # /readyz answers while the cluster cannot be used yet, naming why (TLS, login, unreachable).
        self.side = SideServer(self.health, settings.metrics_host, self.side_port, live=self.liveness)
        await self.side.start()
        await wait_for_kafka(settings, self.kafka_status)
        if settings.kafka_create_topics:
            await ensure_topics(settings)
        self._tasks = await self.begin()

    async def wait(self) -> None:
        await wait_for_failure(self._tasks)

    async def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()
        for task in self._tasks[1:]:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_s + STOP_MARGIN_S)
        for task in self._tasks:
            task.cancel()
        if self.consumer is not None:
            await self.consumer.stop()  # leaves the group so partitions move at once
        if self.producer is not None:
            await self.producer.stop()
        await self.release()
        if self.side is not None:
            await self.side.stop()
        if self.engine is not None:
            await self.engine.dispose()

    async def liveness(self) -> dict[str, bool]:
        """The loops make progress; a stall longer than LIVENESS_STALL_S is one a restart may fix.
        Not started yet (waiting for Kafka or PostgreSQL) is alive: a restart would not cure that."""
        now = time.monotonic()
        alive = self.loop is None or now - self.loop.heartbeat < LIVENESS_STALL_S
        return {"consumer_loop": alive, **self.extra_liveness(now)}

    async def health(self) -> dict[str, bool]:
        assert self.engine is not None
        kafka = self.producer is not None and await kafka_reachable(self.producer)
        if not kafka and self.producer is not None:
            await self.kafka_status.refresh(self.settings)
        return {
            "database": await database_ready(self.engine),
            "kafka": kafka,
            **self.kafka_status.checks(),
            "consumer_loop": self.loop is not None
            and time.monotonic() - self.loop.heartbeat < READY_STALL_S
            and self.loop.healthy,
            **await self.extra_checks(),
        }
