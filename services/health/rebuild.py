"""Recompute the rollups from the runs table (`wf health rebuild`); the result must equal what the
incremental path built from the results topic."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.runs.sql import COMPLETED, FAILED, FINAL

REBUILD = [
    "LOCK TABLE health_rollups, health_latest, health_counted_runs IN EXCLUSIVE MODE",
    "DELETE FROM health_rollups",
    "DELETE FROM health_latest",
    "DELETE FROM health_counted_runs",
    f"""
    INSERT INTO health_rollups (workflow_id, bucket_start, total_runs, success_runs, failed_runs,
                                duration_sum_ms, duration_count)
    SELECT workflow_id, date_trunc('hour', queued_on), count(*),
           count(*) FILTER (WHERE status = {COMPLETED}), count(*) FILTER (WHERE status = {FAILED}),
           coalesce(sum(floor(extract(epoch FROM completed_on - started_on) * 1000)::bigint)
                    FILTER (WHERE status = {COMPLETED} AND started_on IS NOT NULL AND completed_on IS NOT NULL), 0),
           count(*) FILTER (WHERE status = {COMPLETED} AND started_on IS NOT NULL AND completed_on IS NOT NULL)
    FROM workflow_runs WHERE status IN {FINAL} AND NOT is_test
    GROUP BY workflow_id, date_trunc('hour', queued_on)
    """,
    f"""
    INSERT INTO health_latest (workflow_id, last_run_on, last_error, last_error_on)
    SELECT r.workflow_id, max(r.queued_on),
           (SELECT f.error_message FROM workflow_runs f WHERE f.workflow_id = r.workflow_id AND f.status = {FAILED}
              AND NOT f.is_test ORDER BY coalesce(f.completed_on, f.queued_on) DESC LIMIT 1),
           (SELECT max(coalesce(f.completed_on, f.queued_on)) FROM workflow_runs f
              WHERE f.workflow_id = r.workflow_id AND f.status = {FAILED} AND NOT f.is_test)
    FROM workflow_runs r WHERE r.status IN {FINAL} AND NOT r.is_test
    GROUP BY r.workflow_id
    """,
    f"""
    INSERT INTO health_counted_runs (workflow_run_id)
    SELECT workflow_run_id FROM workflow_runs WHERE status IN {FINAL} AND NOT is_test
    """,
]


async def rebuild_rollups(engine: AsyncEngine) -> int:
    """Returns the number of rollup rows written."""
    async with engine.begin() as conn:
        for statement in REBUILD:
            await conn.execute(text(statement))
        return int((await conn.execute(text("SELECT count(*) FROM health_rollups"))).scalar_one())
