"""The dispatcher process: the events consumer, the matching index refresher and the scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.dispatcher import metrics
from services.dispatcher.batch import BatchDispatcher
from services.dispatcher.matching import MatchIndex
from services.dispatcher.scheduler import Scheduler
from shared.config import Settings
from shared.db.budget import DISPATCHER_HEADS_POOL_SIZE
from shared.db.engine import StatementPool, create_engine, create_statement_pool, database_ready
from shared.kafka.batches import BatchLoop
from shared.kafka.clients import create_consumer, create_producer, kafka_reachable
from shared.kafka.connection import KafkaStatus, wait_for_kafka
from shared.kafka.lag import consumer_lag
from shared.kafka.topics import ensure_topics
from shared.logging import get_logger
from shared.service_main import wait_for_failure
from shared.sidecar import LIVENESS_STALL_S, SideServer

log = get_logger(__name__)

FULL_RELOAD_S = 300.0
INDEX_REFRESH_S = 0.25


class DispatcherService:
    def __init__(self, settings: Settings, *, side_port: int | None = None) -> None:
        self.settings = settings
        self.side_port = settings.dispatcher_port if side_port is None else side_port
        self.index = MatchIndex()
        # The background refresh keeps the index warm; correctness does not depend on it, since each
        # batch catches the index up before matching (services/dispatcher/matching.py).
        self.index_refresh_s = INDEX_REFRESH_S
        self.engine: AsyncEngine | None = None
        self.heads: StatementPool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.loop: BatchLoop | None = None
        self.dispatcher: BatchDispatcher | None = None
        self.side: SideServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._scheduler_beat = time.monotonic()
        self._index_beat = time.monotonic()
        # Each loop's latest turn, successful or not (liveness); the beats above count successes.
        self._scheduler_turn = time.monotonic()
        self._index_turn = time.monotonic()
        self.kafka_status = KafkaStatus()

    async def start(self) -> None:
        settings = self.settings
        settings.require_infrastructure()
        self.engine = create_engine(settings, pre_ping=False)
        # /healthz answers while the cluster cannot be used yet, naming why (TLS, login, unreachable).
        self.side = SideServer(self.health, settings.metrics_host, self.side_port, live=self.liveness)
        await self.side.start()
        await wait_for_kafka(settings, self.kafka_status)
        # The matching index's per-batch head check: one autocommit statement, one round trip.
        self.heads = create_statement_pool(
            settings, name="dispatcher-heads", max_size=DISPATCHER_HEADS_POOL_SIZE
        )
        await self.heads.open()
        if settings.kafka_create_topics:
            await ensure_topics(settings)
        self.producer = create_producer(settings)
        await self.producer.start()
        async with self.engine.connect() as conn:
            await self.index.load_all(conn)
        metrics.INDEX_WORKFLOWS.set(len(self.index))
        self.consumer = create_consumer(
            settings,
            group_id=f"{settings.consumer_group_prefix}-dispatcher",
            max_records=settings.dispatcher_batch_max,
        )
        self.dispatcher = BatchDispatcher(self.engine, self.producer, settings, self.index, self.heads)
        # Depth 2: batch N+1's runs are stored while batch N's messages are acknowledged and its offsets
        # committed; the round trips of the two halves overlap instead of adding up.
        self.loop = BatchLoop(
            self.consumer,
            self.dispatcher.handle,
            max_records=settings.dispatcher_batch_max,
            depth=2,
            revoke_wait_s=settings.shutdown_grace_s,
            # Re-reading up to this much after a crash is harmless (runs are unique per event); at low
            # rates it saves an offset commit per event or two.
            commit_interval_s=0.2,
        )
        self.consumer.subscribe([settings.topic_events], listener=self.loop)
        await self.consumer.start()
        scheduler = Scheduler(self.engine, self.producer, settings)
        self._tasks = [
            asyncio.create_task(self.loop.run(), name="events"),
            asyncio.create_task(self._refresh_index(), name="index"),
            asyncio.create_task(self._schedule(scheduler), name="scheduler"),
            asyncio.create_task(self._observe(scheduler), name="observe"),
        ]
        # Everything loaded so far (modules, the index) lives as long as the process: frozen out of the
        # collector's reach, a batch's garbage collections stop re-scanning it (parsing 2,000 events
        # took 38 ms with it scanned, 20 ms frozen).
        gc.freeze()
        log.info("dispatcher.started", workflows=len(self.index))

    async def wait(self) -> None:
        await wait_for_failure(self._tasks)

    async def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()
        for task in self._tasks[1:]:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_s)
        for task in self._tasks:
            task.cancel()
        if self.consumer is not None:
            await self.consumer.stop()  # leaves the group so partitions move at once
        if self.producer is not None:
            await self.producer.stop()
        if self.side is not None:
            await self.side.stop()
        if self.heads is not None:
            await self.heads.close()
        if self.engine is not None:
            await self.engine.dispose()

    async def liveness(self) -> dict[str, bool]:
        """The loops make progress; a stall longer than LIVENESS_STALL_S is one a restart may fix.
        A database or Kafka outage slows the loops' retries but keeps them beating."""
        now = time.monotonic()
        if self.loop is None:  # still waiting for Kafka or PostgreSQL: a restart would not cure that
            return {"consumer_loop": True, "scheduler": True, "matching_index": True}
        return {
            "consumer_loop": now - self.loop.heartbeat < LIVENESS_STALL_S,
            "scheduler": now - self._scheduler_turn < LIVENESS_STALL_S,
            "matching_index": now - self._index_turn < LIVENESS_STALL_S,
        }

    async def health(self) -> dict[str, bool]:
        assert self.engine is not None
        now = time.monotonic()
        kafka = self.producer is not None and await kafka_reachable(self.producer)
        if not kafka and self.producer is not None:
            await self.kafka_status.refresh(self.settings)
        return {
            "database": await database_ready(self.engine),
            "kafka": kafka,
            **self.kafka_status.checks(),
            "consumer_loop": self.loop is not None and now - self.loop.heartbeat < 30 and self.loop.healthy,
            "scheduler": now - self._scheduler_beat < 30,
            "matching_index": now - self._index_beat < 30,
        }

    async def _refresh_index(self) -> None:
        assert self.engine is not None
        last_full = time.monotonic()
        while True:
            await asyncio.sleep(self.index_refresh_s)
            self._index_turn = time.monotonic()
            try:
                async with self.engine.connect() as conn:
                    if time.monotonic() - last_full > FULL_RELOAD_S:
                        await self.index.load_all(conn)
                        last_full = time.monotonic()
                    elif await self.index.refresh(conn):
                        log.info("index.refreshed", workflows=len(self.index), change_id=self.index.applied)
                metrics.INDEX_WORKFLOWS.set(len(self.index))
                self._index_beat = time.monotonic()
            except Exception as exc:
                log.warning("index.refresh_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(1)

    async def _schedule(self, scheduler: Scheduler) -> None:
        while True:
            self._scheduler_turn = time.monotonic()
            try:
                released = await scheduler.tick()
                self._scheduler_beat = time.monotonic()
                if released:
                    continue  # more may be due right away
            except Exception as exc:
                log.warning("scheduler.tick_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(self.settings.scheduler_interval_s)

    async def _observe(self, scheduler: Scheduler) -> None:
        while True:
            await asyncio.sleep(5)
            with contextlib.suppress(Exception):
                await scheduler.measure_queue()
                metrics.CONSUMER_LAG.set(await consumer_lag(self.consumer))
