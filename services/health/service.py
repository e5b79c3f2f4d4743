"""The health service: aggregates run outcomes from the results topic into rollups."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import text

from services.health.retention import apply_retention
from services.health.rollups import Outcome, apply_outcomes
from shared.config import Settings
from shared.db.budget import HEALTH_POOL_SIZE
from shared.db.engine import create_engine
from shared.enums import FINAL_RUN_STATUSES
from shared.kafka.batches import BatchLoop
from shared.kafka.clients import create_consumer, create_producer
from shared.kafka.dead_letter import DeadLetter, send_dead_letters, undecodable_letter
from shared.kafka.undecodable import UndecodableRecord
from shared.logging import get_logger
from shared.messages import RunOutcome
from shared.service import ConsumerService

log = get_logger(__name__)

# Rollups a second behind are fine (the health endpoint reads the current hour's edge from the runs
# table): outcomes are gathered this long per transaction and per fetch.
BATCH_INTERVAL_S = 0.5
RETENTION_LOCK = 0x77665F72  # "wf_r": one retention job at a time across replicas
OUTCOMES = Counter("wf_health_outcomes_total", "Run outcomes consumed", ["result"])


def parse_outcomes(
    records: Sequence[ConsumerRecord[bytes, bytes]], dead: list[DeadLetter] | None = None
) -> list[Outcome]:
    """The final outcomes among ``records``; the unreadable and invalid ones are added to ``dead``."""
    outcomes = []
    for record in records:
        if isinstance(record, UndecodableRecord):
            OUTCOMES.labels("invalid").inc()
            if dead is not None:
                dead.append(undecodable_letter(record))
            continue
        try:
            msg = RunOutcome.model_validate_json(record.value or b"")
        except ValidationError as exc:
            OUTCOMES.labels("invalid").inc()
            if dead is not None:
                reason = f"not a run outcome: {exc.error_count()} errors, first: {exc.errors()[0]['msg']}"
                dead.append(DeadLetter(record, reason[:300], "invalid_outcome"))
            continue
        if msg.IsTest or msg.Status not in FINAL_RUN_STATUSES:
            OUTCOMES.labels("ignored").inc()
            continue
        outcomes.append(
            Outcome(
                msg.RunId,
                msg.WorkflowId,
                msg.Status,
                msg.QueuedOn,
                msg.StartedOn,
                msg.CompletedOn,
                msg.ErrorMessage,
            )
        )
    return outcomes


class HealthService(ConsumerService):
    def __init__(self, settings: Settings, *, side_port: int | None = None) -> None:
        super().__init__(settings, settings.health.port if side_port is None else side_port)
        self.loop: BatchLoop | None = None  # the producer is for dead letters only

    async def prepare(self) -> None:
        self.engine = create_engine(self.settings, pool_size=HEALTH_POOL_SIZE)

    async def begin(self) -> list[asyncio.Task[None]]:
        self.producer = create_producer(self.settings)
        await self.producer.start()
        self.consumer = create_consumer(
            self.settings,
            self.settings.topic_results,
            group_id=f"{self.settings.consumer_group_prefix}-health",
            # It gathers outcomes for BATCH_INTERVAL_S anyway: the broker holds each fetch until that
            # long has passed (or a megabyte is there), a fetch request per interval instead of about
            # one per outcome at a few hundred runs a second.
            fetch_min_bytes=1024 * 1024,
            fetch_max_wait_ms=int(BATCH_INTERVAL_S * 1000),
        )
        await self.consumer.start()
        # Rollups a second behind are fine (the health endpoint reads the current hour's edge from the
        # runs table): gathering outcomes for half a second saves a transaction and a commit per run.
        self.loop = BatchLoop(
            self.consumer, self.handle, commit_interval_s=1.0, batch_interval_s=BATCH_INTERVAL_S
        )
        return [
            asyncio.create_task(self.loop.run(), name="outcomes"),
            asyncio.create_task(self._retain(), name="retention"),
        ]

    async def _retain(self) -> None:
        """Hourly, in one replica at a time (an advisory lock), delete what is past retention."""
        assert self.engine is not None
        await asyncio.sleep(60)
        while True:
            try:
                async with self.engine.connect() as conn:
                    got = (
                        await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": RETENTION_LOCK})
                    ).scalar_one()
                    if got:
                        try:
                            report = await apply_retention(
                                self.engine,
                                log_days=self.settings.health.retention_log_days,
                                run_days=self.settings.health.retention_run_days,
                            )
                            log.info(
                                "retention.applied",
                                logs=report.logs,
                                payloads=report.payloads,
                                runs=report.runs,
                            )
                        finally:
                            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RETENTION_LOCK})
                            await conn.commit()
            except Exception as exc:
                log.warning("retention.failed", error=f"{type(exc).__name__}: {exc}"[:300])
            await asyncio.sleep(3600)

    async def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        assert self.engine is not None
        dead: list[DeadLetter] = []
        outcomes = parse_outcomes(records, dead)
        if dead and self.producer is not None:
            await send_dead_letters(self.producer, self.settings.topic_dlq, dead)
        async with self.engine.begin() as conn:
            counted = await apply_outcomes(conn, outcomes)
        OUTCOMES.labels("counted").inc(counted)
        OUTCOMES.labels("duplicate").inc(len(outcomes) - counted)
