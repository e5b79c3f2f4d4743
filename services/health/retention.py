"""Retention: old run payloads, step logs and runs are deleted in small batches; rollups stay.

Defaults: payloads and step logs after 30 days, run rows after 90 days (WF_RETENTION_LOG_DAYS,
WF_RETENTION_RUN_DAYS). Batches keep each transaction short so the job never blocks the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.runs.statements import CLEAR_PAYLOADS, DELETE_RUNS

BATCH = 5000

DELETE_LOGS = text(
    """
    DELETE FROM workflow_run_logs WHERE workflow_run_log_id IN (
        SELECT workflow_run_log_id FROM workflow_run_logs
        WHERE started_on < now() - make_interval(days => :days) LIMIT :batch)
    """
)
DELETE_COUNTED = text(
    "DELETE FROM health_counted_runs WHERE workflow_run_id IN (SELECT workflow_run_id FROM health_counted_runs "
    "WHERE counted_on < now() - make_interval(days => :days) LIMIT :batch)"
)
DELETE_CHANGES = text("DELETE FROM workflow_changes WHERE changed_on < now() - interval '1 hour'")
DELETE_ROLLUPS = text("DELETE FROM health_rollups WHERE bucket_start < now() - make_interval(days => :days)")


@dataclass
class RetentionReport:
    logs: int = 0
    payloads: int = 0
    runs: int = 0


async def _drain(engine: AsyncEngine, statement: TextClause, **params: int) -> int:
    total = 0
    while True:
        async with engine.begin() as conn:
            result: CursorResult[Any] = await conn.execute(statement, {**params, "batch": BATCH})
            removed = int(result.rowcount)
        total += removed
        if removed < BATCH:
            return total


async def apply_retention(engine: AsyncEngine, *, log_days: int, run_days: int) -> RetentionReport:
    report = RetentionReport()
    report.logs = await _drain(engine, DELETE_LOGS, days=log_days)
    report.payloads = await _drain(engine, CLEAR_PAYLOADS, days=log_days)
    report.runs = await _drain(engine, DELETE_RUNS, days=run_days)
    # a run older than run_days can no longer be redelivered meaningfully; its dedup row can go too
    await _drain(engine, DELETE_COUNTED, days=run_days)
    async with engine.begin() as conn:
        await conn.execute(DELETE_CHANGES)
        await conn.execute(DELETE_ROLLUPS, {"days": max(run_days, 31)})
    return report
