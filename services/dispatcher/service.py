"""The dispatcher process: the events consumer, the matching index refresher and the scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

from services.dispatcher import metrics
from services.dispatcher.batch import BatchDispatcher
from services.dispatcher.matching import MatchIndex
from services.dispatcher.scheduler import Scheduler
from shared.config import Settings
from shared.db.budget import DISPATCHER_HEADS_POOL_SIZE
from shared.db.engine import StatementPool, create_engine, create_statement_pool
from shared.kafka.batches import BatchLoop
from shared.kafka.clients import create_consumer, create_producer
from shared.kafka.lag import consumer_lag
from shared.logging import get_logger
from shared.service import READY_STALL_S, ConsumerService
from shared.sidecar import LIVENESS_STALL_S

log = get_logger(__name__)

FULL_RELOAD_S = 300.0
INDEX_REFRESH_S = 0.25


class DispatcherService(ConsumerService):
    def __init__(self, settings: Settings, *, side_port: int | None = None) -> None:
        super().__init__(settings, settings.dispatcher.port if side_port is None else side_port)
        self.index = MatchIndex()
        # The background refresh keeps the index warm; correctness does not depend on it, since each
        # batch catches the index up before matching (services/dispatcher/matching.py).
        self.index_refresh_s = INDEX_REFRESH_S
        self.heads: StatementPool | None = None
        self.loop: BatchLoop | None = None
        self.dispatcher: BatchDispatcher | None = None
        self._scheduler_beat = time.monotonic()
        self._index_beat = time.monotonic()
        # Each loop's latest turn, successful or not (liveness); the beats above count successes.
        self._scheduler_turn = time.monotonic()
        self._index_turn = time.monotonic()

    async def prepare(self) -> None:
        self.engine = create_engine(self.settings, pre_ping=False)

    async def begin(self) -> list[asyncio.Task[None]]:
        settings = self.settings
        assert self.engine is not None
        # The matching index's per-batch head check: one autocommit statement, one round trip.
        self.heads = create_statement_pool(
            settings, name="dispatcher-heads", max_size=DISPATCHER_HEADS_POOL_SIZE
        )
        await self.heads.open()
        self.producer = create_producer(settings)
        await self.producer.start()
        async with self.engine.connect() as conn:
            await self.index.load_all(conn)
        metrics.INDEX_WORKFLOWS.set(len(self.index))
        self.consumer = create_consumer(
            settings,
            group_id=f"{settings.consumer_group_prefix}-dispatcher",
            max_records=settings.dispatcher.batch_max,
        )
        self.dispatcher = BatchDispatcher(self.engine, self.producer, settings, self.index, self.heads)
        # Depth 2: batch N+1's runs are stored while batch N's messages are acknowledged and its offsets
        # committed; the round trips of the two halves overlap instead of adding up.
        self.loop = BatchLoop(
            self.consumer,
            self.dispatcher.handle,
            max_records=settings.dispatcher.batch_max,
            depth=2,
            revoke_wait_s=settings.shutdown_grace_s,
            # Re-reading up to this much after a crash is harmless (runs are unique per event); at low
            # rates it saves an offset commit per event or two.
            commit_interval_s=0.2,
        )
        self.consumer.subscribe([settings.topic_events], listener=self.loop)
        await self.consumer.start()
        scheduler = Scheduler(self.engine, self.producer, settings)
        tasks = [
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
        return tasks

    async def release(self) -> None:
        if self.heads is not None:
            await self.heads.close()

    def extra_liveness(self, now: float) -> dict[str, bool]:
        """A database or Kafka outage slows the loops' retries but keeps them beating."""
        if self.loop is None:  # still waiting for Kafka or PostgreSQL: a restart would not cure that
            return {"scheduler": True, "matching_index": True}
        return {
            "scheduler": now - self._scheduler_turn < LIVENESS_STALL_S,
            "matching_index": now - self._index_turn < LIVENESS_STALL_S,
        }

    async def extra_checks(self) -> dict[str, bool]:
        now = time.monotonic()
        return {
            "scheduler": now - self._scheduler_beat < READY_STALL_S,
            "matching_index": now - self._index_beat < READY_STALL_S,
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
