"""Releases runs whose time has come, safely with any number of dispatcher replicas.

Each tick, in one transaction: runs that are due (deferred by the per-minute limit, waiting for a
retry, or committed but never published) are locked with ``FOR UPDATE SKIP LOCKED`` — so two
replicas never release the same run — marked published and produced to the run topic before the
commit. A Running run whose executor stopped renewing its lease is put back to Pending. A final run whose
outcome was not acknowledged within the grace period (the run row is the outcome's outbox:
shared/runs/outbox.py) has its outcome published again, and its mark cleared in the same transaction.
No Kafka message is ever held unacknowledged while a run waits.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.dispatcher import metrics
from shared.config import Settings
from shared.enums import RunStatus
from shared.logging import get_logger
from shared.runs.outbox import RunToPublish, clear_outcomes_pending, produce_outcomes, produce_runs
from shared.runs.outcomes import run_outcome
from shared.runs.statements import OUTCOMES_DUE, QUEUE_DEPTH, REAP_EXPIRED_LEASES, RELEASE_DUE

log = get_logger(__name__)


class Scheduler:
    def __init__(self, engine: AsyncEngine, producer: AIOKafkaProducer, settings: Settings) -> None:
        self.engine = engine
        self.producer = producer
        self.settings = settings

    async def tick(self, *, limit: int = 1000) -> int:
        """Release one round of due runs; returns how many were released."""
        async with self.engine.begin() as conn:
            reaped = (await conn.execute(REAP_EXPIRED_LEASES)).all()
        if reaped:
            metrics.LEASES_EXPIRED.inc(len(reaped))
            log.warning("runs.lease_expired", run_ids=[r[0] for r in reaped][:20], count=len(reaped))
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(RELEASE_DUE, {"grace": self.settings.unpublished_grace_s, "limit": limit})
            ).all()
            # Produced before the commit: if producing fails, the runs stay unpublished for the next tick.
            await produce_runs(
                self.producer,
                self.settings,
                [RunToPublish(run_id, dep, attempt) for run_id, dep, attempt, _, _ in rows],
            )
        for _, _, _, status, unpublished in rows:
            kind = "retry" if status == RunStatus.Retrying else ("unpublished" if unpublished else "deferred")
            metrics.RUNS_RELEASED.labels(kind).inc()
        announced = await self.republish_outcomes(limit=limit)
        return len(rows) + announced

    async def republish_outcomes(self, *, limit: int = 1000) -> int:
        """Publish the outcomes that were not acknowledged within the grace period; returns how many."""
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(OUTCOMES_DUE, {"grace": self.settings.unpublished_grace_s, "limit": limit})
            ).all()
            if not rows:
                return 0
            # Produced before the commit: if producing fails, the marks stay for the next tick.
            await produce_outcomes(
                self.producer,
                self.settings,
                [run_outcome(*row) for row in rows],
            )
            await clear_outcomes_pending(conn, [row[0] for row in rows])
        metrics.OUTCOMES_REPUBLISHED.inc(len(rows))
        log.warning("runs.outcomes_republished", count=len(rows), run_ids=[r[0] for r in rows][:20])
        return len(rows)

    async def measure_queue(self) -> None:
        async with self.engine.connect() as conn:
            depth, oldest = (await conn.execute(QUEUE_DEPTH)).one()
        metrics.PENDING_RUNS.set(depth)
        metrics.OLDEST_PENDING_SECONDS.set(float(oldest))
