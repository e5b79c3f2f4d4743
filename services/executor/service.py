"""The executor process: consumes run messages, many runs in flight, leases renewed by a heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import time
import uuid

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncEngine

from services.executor import metrics
from services.executor.actions.base import ActionSettings
from services.executor.engine import RunExecutor
from services.executor.store import RunStore
from shared.config import Settings
from shared.db.engine import StatementPool, create_engine, create_statement_pool, database_ready
from shared.egress import EgressGuard
from shared.kafka.clients import create_consumer, create_producer, kafka_reachable
from shared.kafka.concurrent import ConcurrentLoop
from shared.kafka.connection import KafkaStatus, wait_for_kafka
from shared.kafka.dead_letter import DeadLetter, send_dead_letters, undecodable_letter
from shared.kafka.lag import consumer_lag
from shared.kafka.topics import ensure_topics
from shared.kafka.undecodable import UndecodableRecord
from shared.keys import keyring_from
from shared.logging import get_logger
from shared.messages import RunMessage
from shared.service_main import wait_for_failure
from shared.sidecar import LIVENESS_STALL_S, SideServer
from shared.tracing import context_from_headers, tracer

log = get_logger(__name__)


def action_settings(settings: Settings) -> ActionSettings:
    return ActionSettings(
        http_timeout_s=settings.http_timeout_s,
        smtp_timeout_s=settings.smtp_timeout_s,
        upload_timeout_s=settings.upload_timeout_s,
        twilio_base_url=settings.twilio_base_url,
        box_api_base_url=settings.box_api_base_url,
        box_upload_base_url=settings.box_upload_base_url,
        dropbox_api_base_url=settings.dropbox_api_base_url,
        dropbox_content_base_url=settings.dropbox_content_base_url,
    )


class ExecutorService:
    def __init__(self, settings: Settings, *, side_port: int | None = None) -> None:
        self.settings = settings
        self.side_port = settings.executor_port if side_port is None else side_port
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.engine: AsyncEngine | None = None
        self.statements: StatementPool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.loop: ConcurrentLoop | None = None
        self.executor: RunExecutor | None = None
        self.egress: EgressGuard | None = None
        self.side: SideServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._db_ok = True
        self.kafka_status = KafkaStatus()

    async def start(self) -> None:
        settings = self.settings
        settings.require_infrastructure()
        self.engine = create_engine(settings, pre_ping=False)  # the send quotas' transactions
        self.statements = create_statement_pool(settings, name="executor")
        await self.statements.open()
        # /healthz answers while the cluster cannot be used yet, naming why (TLS, login, unreachable).
        self.side = SideServer(self.health, settings.metrics_host, self.side_port, live=self.liveness)
        await self.side.start()
        await wait_for_kafka(settings, self.kafka_status)
        if settings.kafka_create_topics:
            await ensure_topics(settings)
        # It only produces run outcomes (for the health figures): a longer linger batches them into
        # fewer produce requests, which costs the broker less CPU than one request per run.
        self.producer = create_producer(settings, linger_ms=10)
        await self.producer.start()
        self.egress = EgressGuard(settings.allow_cidrs, settings.host_overrides)
        store = RunStore(self.engine, self.statements, self.owner, settings.executor_lease_s)
        self.executor = RunExecutor(
            store, self.producer, settings, keyring_from(settings), self.egress, action_settings(settings)
        )
        self.consumer = create_consumer(
            settings,
            group_id=f"{settings.consumer_group_prefix}-executor",
            max_records=settings.executor_concurrency,
        )
        self.loop = ConcurrentLoop(
            self.consumer,
            self._handle,
            concurrency=settings.executor_concurrency,
            drain_timeout_s=settings.shutdown_grace_s,
        )
        self.consumer.subscribe([settings.topic_runs], listener=self.loop)
        await self.consumer.start()
        self._tasks = [
            asyncio.create_task(self.loop.run(), name="runs"),
            asyncio.create_task(self._heartbeat(), name="leases"),
            asyncio.create_task(self._observe(), name="observe"),
        ]
        # What start-up loaded lives as long as the process: frozen, the collector stops re-scanning it.
        gc.freeze()
        log.info("executor.started", owner=self.owner)

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

    async def wait(self) -> None:
        await wait_for_failure(self._tasks)

    async def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()
            await asyncio.wait([self._tasks[0]], timeout=self.settings.shutdown_grace_s + 5)
        for task in self._tasks:
            task.cancel()
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.egress is not None:
            await self.egress.aclose()
        if self.side is not None:
            await self.side.stop()
        if self.statements is not None:
            await self.statements.close()
        if self.engine is not None:
            await self.engine.dispose()

    async def liveness(self) -> dict[str, bool]:
        """The consumer loop makes progress. Not "processing": one run that keeps failing (or a
        database outage) is not something a restart fixes."""
        # Not started yet (still waiting for Kafka or PostgreSQL) is alive: a restart would not cure a
        # refused login or an outage; /readyz names the cause.
        alive = self.loop is None or time.monotonic() - self.loop.heartbeat < LIVENESS_STALL_S
        return {"consumer_loop": alive}

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
            and time.monotonic() - self.loop.heartbeat < 30
            and self.loop.fetch_error is None,
            "processing": self._db_ok,
        }
