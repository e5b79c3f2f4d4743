"""Releases runs whose time has come, safely with any number of dispatcher replicas.

Each tick, in one transaction: runs that are due (deferred by the per-minute limit, waiting for a
retry, or committed but never published) are locked with ``FOR UPDATE SKIP LOCKED`` — so two
replicas never release the same run — marked published and produced to the run topic before the
commit. A Running run whose executor stopped renewing its lease is put back to Pending. A final run whose
outcome was not acknowledged within the grace period (the run row is the outcome's outbox:
shared/runs_outbox.py) has its outcome published again, and its mark cleared in the same transaction.
No Kafka message is ever held unacknowledged while a run waits.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.dispatcher import metrics
from shared.config import Settings
from shared.enums import RunStatus
from shared.logging import get_logger
from shared.messages import RunOutcome
from shared.runs_outbox import (
    OUTCOMES_DUE,
    RunToPublish,
    clear_outcomes_pending,
    produce_outcomes,
    produce_runs,
)

log = get_logger(__name__)

RELEASE_DUE = text(
    """
    WITH due AS (
        SELECT workflow_run_id FROM workflow_runs
        WHERE status IN (0, 5) AND published_on IS NULL
          AND coalesce(next_attempt_on, queued_on) <= now()
          AND (next_attempt_on IS NOT NULL OR queued_on <= now() - make_interval(secs => :grace))
        ORDER BY coalesce(next_attempt_on, queued_on)
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE workflow_runs r SET published_on = now()
    FROM due WHERE r.workflow_run_id = due.workflow_run_id
    RETURNING r.workflow_run_id, r.department_id, r.attempt_number, r.status, r.next_attempt_on IS NULL
    """
)

REAP_EXPIRED_LEASES = text(
    """
    WITH expired AS (
        SELECT workflow_run_id FROM workflow_runs
        WHERE status = 1 AND lease_until < now()
        LIMIT 500 FOR UPDATE SKIP LOCKED
    )
    UPDATE workflow_runs r
    SET status = 0, published_on = NULL, next_attempt_on = now(), lease_owner = NULL, lease_until = NULL
    FROM expired WHERE r.workflow_run_id = expired.workflow_run_id
    RETURNING r.workflow_run_id
    """
)

QUEUE_DEPTH = text(
    """
    SELECT count(*), coalesce(extract(epoch FROM now() - min(coalesce(next_attempt_on, queued_on))), 0)
    FROM workflow_runs
    WHERE status IN (0, 5) AND coalesce(next_attempt_on, queued_on) <= now()
    """
)


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
            kind = "retry" if status == 5 else ("unpublished" if unpublished else "deferred")
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
                [
                    RunOutcome(
                        RunId=run_id,
                        WorkflowId=workflow_id,
                        DepartmentId=department_id,
                        Status=RunStatus(status),
                        IsTest=is_test,
                        AttemptNumber=attempt,
                        QueuedOn=queued_on,
                        StartedOn=started_on,
                        CompletedOn=completed_on,
                        ErrorMessage=error,
                    )
                    for (
                        run_id,
                        workflow_id,
                        department_id,
                        status,
                        is_test,
                        attempt,
                        queued_on,
                        started_on,
                        completed_on,
                        error,
                    ) in rows
                ],
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
