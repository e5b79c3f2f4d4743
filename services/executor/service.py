"""The executor process: consumes run messages, many runs in flight, leases renewed by a heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import uuid

import orjson
from aiokafka.structs import ConsumerRecord

from services.executor import metrics
from services.executor.egress import EgressGuard
from services.executor.engine import RunExecutor
from services.executor.store import RunStore
from shared import probes
from shared.config import Settings
from shared.db.engine import StatementPool, create_engine, create_statement_pool
from shared.kafka.clients import create_consumer, create_producer
from shared.kafka.concurrent import ConcurrentLoop
from shared.kafka.dead_letter import DeadLetter, send_dead_letters, undecodable_letter
from shared.kafka.lag import consumer_lag
from shared.kafka.undecodable import UndecodableRecord
from shared.keys import keyring_from
from shared.logging import get_logger
from shared.messages import RunMessage
from shared.service import ConsumerService
from shared.tracing import context_from_headers, tracer

log = get_logger(__name__)


class ExecutorService(ConsumerService):
    def __init__(self, settings: Settings, *, side_port: int | None = None) -> None:
        super().__init__(settings, settings.executor.port if side_port is None else side_port)
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.statements: StatementPool | None = None
        self.loop: ConcurrentLoop | None = None
        self.executor: RunExecutor | None = None
        self.egress: EgressGuard | None = None
        self._db_ok = True

    async def prepare(self) -> None:
        self.engine = create_engine(self.settings, pre_ping=False)  # the send quotas' transactions
        self.statements = create_statement_pool(self.settings, name="executor")
        await self.statements.open()

    async def begin(self) -> list[asyncio.Task[None]]:
        settings = self.settings
        assert self.engine is not None
        assert self.statements is not None
        # It only produces run outcomes (for the health figures): a longer linger batches them into
        # fewer produce requests, which costs the broker less CPU than one request per run.
        self.producer = create_producer(settings, linger_ms=10)
        await self.producer.start()
        self.egress = EgressGuard(settings.allow_cidrs, settings.host_overrides)
        store = RunStore(self.engine, self.statements, self.owner, settings.executor.lease_s)
        self.executor = RunExecutor(
            store, self.producer, settings, keyring_from(settings), self.egress, settings.actions
        )
        self.consumer = create_consumer(
            settings,
            group_id=f"{settings.consumer_group_prefix}-executor",
            max_records=settings.executor.concurrency,
        )
        self.loop = ConcurrentLoop(
            self.consumer,
            self._handle,
            concurrency=settings.executor.concurrency,
            drain_timeout_s=settings.shutdown_grace_s,
        )
        self.consumer.subscribe([settings.topic_runs], listener=self.loop)
        await self.consumer.start()
        tasks = [
            asyncio.create_task(self.loop.run(), name="runs"),
            asyncio.create_task(self._heartbeat(), name="leases"),
            asyncio.create_task(self._observe(), name="observe"),
        ]
        # What start-up loaded lives as long as the process: frozen, the collector stops re-scanning it.
        gc.freeze()
        log.info("executor.started", owner=self.owner)
        return tasks

    def _read(self, record: ConsumerRecord[bytes, bytes]) -> int | DeadLetter:
        """The run id of a run message, or the dead letter of one that is unreadable or invalid."""
        if isinstance(record, UndecodableRecord):
            return undecodable_letter(record)
        try:
            return RunMessage.from_bytes(record.value or b"").RunId
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return DeadLetter(record, f"not a run message: {type(exc).__name__}: {exc}"[:300], "invalid_run")

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        assert self.executor is not None
        assert self.producer is not None
        run_id = self._read(record)
        if isinstance(run_id, int):
            probes.stamp("executor.fetched", run_id)
        delay = 0.5
        while True:
            metrics.IN_FLIGHT.set(self.loop.in_flight if self.loop else 0)
            try:
                if isinstance(run_id, DeadLetter):
                    await send_dead_letters(self.producer, self.settings.topic_dlq, [run_id])
                    return
                with tracer().start_as_current_span(
                    "run.execute",
                    context=context_from_headers(record.headers),
                    attributes={"workflows.run_id": run_id},
                ):
                    await self.executor.process(run_id)
                self._db_ok = True
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Infrastructure trouble (database or broker down): keep the message un-committed and
                # try again; the run's lease protects against doing a step twice meanwhile.
                self._db_ok = False
                log.warning(
                    "run.processing_failed",
                    run_id=None if isinstance(run_id, DeadLetter) else run_id,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _heartbeat(self) -> None:
        assert self.executor is not None
        interval = max(1.0, self.settings.executor_lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.executor.store.renew_many(sorted(self.executor.in_flight))
            except Exception as exc:
                log.warning("lease.renew_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    async def _observe(self) -> None:
        while True:
            await asyncio.sleep(5)
            with contextlib.suppress(Exception):
                metrics.CONSUMER_LAG.set(await consumer_lag(self.consumer))

    async def release(self) -> None:
        if self.egress is not None:
            await self.egress.aclose()
        if self.statements is not None:
            await self.statements.close()

    async def extra_checks(self) -> dict[str, bool]:
        # "processing" is readiness only: one run that keeps failing (or a database outage) is not
        # something a restart fixes.
        return {"processing": self._db_ok}
