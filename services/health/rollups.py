"""Run outcomes → hourly rollups per workflow, counted once per run however often redelivered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.enums import RunStatus

CLAIM_RUNS = text(
    "INSERT INTO health_counted_runs (workflow_run_id) SELECT unnest(CAST(:ids AS bigint[])) "
    "ON CONFLICT DO NOTHING RETURNING workflow_run_id"
)

ADD_TO_ROLLUPS = text(
    """
    INSERT INTO health_rollups AS h (workflow_id, bucket_start, total_runs, success_runs, failed_runs,
                                     duration_sum_ms, duration_count)
    SELECT workflow_id, bucket, sum(total), sum(success), sum(failed), sum(duration_ms), sum(timed)
    FROM unnest(CAST(:workflow_ids AS int[]), CAST(:buckets AS timestamptz[]), CAST(:totals AS int[]),
                CAST(:successes AS int[]), CAST(:failures AS int[]), CAST(:durations AS bigint[]),
                CAST(:timed AS int[])) AS t(workflow_id, bucket, total, success, failed, duration_ms, timed)
    GROUP BY workflow_id, bucket
    ON CONFLICT (workflow_id, bucket_start) DO UPDATE SET
        total_runs = h.total_runs + EXCLUDED.total_runs,
        success_runs = h.success_runs + EXCLUDED.success_runs,
        failed_runs = h.failed_runs + EXCLUDED.failed_runs,
        duration_sum_ms = h.duration_sum_ms + EXCLUDED.duration_sum_ms,
        duration_count = h.duration_count + EXCLUDED.duration_count
    """
)

UPDATE_LATEST = text(
    """
    INSERT INTO health_latest AS l (workflow_id, last_run_on, last_error, last_error_on)
    SELECT workflow_id, max(queued_on), NULL, NULL
    FROM unnest(CAST(:workflow_ids AS int[]), CAST(:queued AS timestamptz[])) AS t(workflow_id, queued_on)
    GROUP BY workflow_id
    ON CONFLICT (workflow_id) DO UPDATE SET last_run_on = greatest(l.last_run_on, EXCLUDED.last_run_on)
    """
)

UPDATE_LAST_ERROR = text(
    """
    INSERT INTO health_latest AS l (workflow_id, last_run_on, last_error, last_error_on)
    VALUES (:workflow_id, :queued_on, :error, :error_on)
    ON CONFLICT (workflow_id) DO UPDATE SET last_error = EXCLUDED.last_error, last_error_on = EXCLUDED.last_error_on
    WHERE l.last_error_on IS NULL OR l.last_error_on <= EXCLUDED.last_error_on
    """
)


@dataclass(frozen=True, slots=True)
class Outcome:
    run_id: int
    workflow_id: int
    status: RunStatus
    queued_on: datetime
    started_on: datetime | None
    completed_on: datetime | None
    error: str | None


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def apply_outcomes(conn: AsyncConnection, outcomes: Sequence[Outcome]) -> int:
    """Adds the outcomes not counted before; returns how many were new."""
    if not outcomes:
        return 0
    unique = {o.run_id: o for o in outcomes}
    new_ids = {row[0] for row in await conn.execute(CLAIM_RUNS, {"ids": list(unique)})}
    fresh = [o for run_id, o in unique.items() if run_id in new_ids]
    if not fresh:
        return 0
    timed = [
        o.status is RunStatus.Completed and o.started_on is not None and o.completed_on is not None
        for o in fresh
    ]
    await conn.execute(
        ADD_TO_ROLLUPS,
        {
            "workflow_ids": [o.workflow_id for o in fresh],
            "buckets": [hour_of(o.queued_on) for o in fresh],
            "totals": [1] * len(fresh),
            "successes": [int(o.status is RunStatus.Completed) for o in fresh],
            "failures": [int(o.status is RunStatus.Failed) for o in fresh],
            "durations": [
                int((o.completed_on - o.started_on).total_seconds() * 1000) if t else 0  # type: ignore[operator]
                for o, t in zip(fresh, timed, strict=True)
            ],
            "timed": [int(t) for t in timed],
        },
    )
    await conn.execute(
        UPDATE_LATEST,
        {"workflow_ids": [o.workflow_id for o in fresh], "queued": [o.queued_on for o in fresh]},
    )
    for o in fresh:
        if o.status is RunStatus.Failed and o.error:
            await conn.execute(
                UPDATE_LAST_ERROR,
                {
                    "workflow_id": o.workflow_id,
                    "queued_on": o.queued_on,
                    "error": o.error[:4000],
                    "error_on": o.completed_on or o.queued_on,
                },
            )
    return len(fresh)
