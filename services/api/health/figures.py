"""The figures of GET /api/v4/workflows/{id}/health, answered from a few rollup rows.

Windows are exact: whole hours come from the hourly rollups, and the one partial hour at the far
edge of each window is counted from the runs table (an index range of at most one hour of runs).
Figures count runs by the time they were queued: finished runs from the rollups plus the few runs
still Pending/Running/Retrying; test runs are left out. SuccessRatePercent is over 30 days with one decimal; AverageDurationMs averages
Completed runs' CompletedOn − StartedOn over 30 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.runs.sql import COMPLETED, FAILED, FINAL, OPEN

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}

FULL_HOURS = text(
    """
    SELECT coalesce(sum(total_runs), 0), coalesce(sum(success_runs), 0), coalesce(sum(failed_runs), 0),
           coalesce(sum(duration_sum_ms), 0), coalesce(sum(duration_count), 0)
    FROM health_rollups WHERE workflow_id = :w AND bucket_start >= :start
    """
)

EDGE_RUNS = text(
    f"""
    SELECT count(*), count(*) FILTER (WHERE status = {COMPLETED}), count(*) FILTER (WHERE status = {FAILED}),
           coalesce(sum(floor(extract(epoch FROM completed_on - started_on) * 1000)::bigint)
                    FILTER (WHERE status = {COMPLETED} AND started_on IS NOT NULL AND completed_on IS NOT NULL), 0),
           count(*) FILTER (WHERE status = {COMPLETED} AND started_on IS NOT NULL AND completed_on IS NOT NULL)
    FROM workflow_runs
    WHERE workflow_id = :w AND queued_on >= :start AND queued_on < :end AND status IN {FINAL} AND NOT is_test
    """
)

LATEST = text("SELECT last_run_on, last_error FROM health_latest WHERE workflow_id = :w")

# Unfinished runs are not in the rollups yet; the partial index of open runs by (department,
# workflow) keeps this to a handful of rows.
OPEN_RUNS = text(
    f"""
    SELECT count(*) FILTER (WHERE queued_on >= :d1), count(*) FILTER (WHERE queued_on >= :d7), count(*),
           max(queued_on)
    FROM workflow_runs
    WHERE department_id = :d AND workflow_id = :w AND status IN {OPEN} AND NOT is_test AND queued_on >= :d30
    """
)


@dataclass(frozen=True, slots=True)
class WindowCounts:
    total: int
    success: int
    failed: int
    duration_sum_ms: int
    duration_count: int


@dataclass(frozen=True, slots=True)
class HealthFigures:
    windows: dict[str, WindowCounts]
    success_rate_percent: float
    average_duration_ms: int
    last_run_on: datetime | None
    last_error: str | None


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


async def _window(conn: AsyncConnection, workflow_id: int, start: datetime) -> WindowCounts:
    whole_from = _ceil_hour(start)
    full = (await conn.execute(FULL_HOURS, {"w": workflow_id, "start": whole_from})).one()
    edge = (0, 0, 0, 0, 0)
    if whole_from != start:
        edge = tuple(
            (await conn.execute(EDGE_RUNS, {"w": workflow_id, "start": start, "end": whole_from})).one()
        )
    return WindowCounts(*(int(a) + int(b) for a, b in zip(full, edge, strict=True)))


async def health_figures(
    conn: AsyncConnection, department_id: int, workflow_id: int, *, now: datetime | None = None
) -> HealthFigures:
    now = now or datetime.now(UTC)
    finished = {name: await _window(conn, workflow_id, now - span) for name, span in WINDOWS.items()}
    starts = {f"d{n}": now - span for n, span in zip((1, 7, 30), WINDOWS.values(), strict=True)}
    *open_counts, newest_open = (
        await conn.execute(OPEN_RUNS, {"d": department_id, "w": workflow_id, **starts})
    ).one()
    windows = {
        name: WindowCounts(
            counts.total + int(extra),
            counts.success,
            counts.failed,
            counts.duration_sum_ms,
            counts.duration_count,
        )
        for (name, counts), extra in zip(finished.items(), open_counts, strict=True)
    }
    month = windows["30d"]
    rate = round(month.success * 100.0 / month.total, 1) if month.total else 0.0
    average = round(month.duration_sum_ms / month.duration_count) if month.duration_count else 0
    latest = (await conn.execute(LATEST, {"w": workflow_id})).first()
    last_run = max((t for t in (latest[0] if latest else None, newest_open) if t is not None), default=None)
    return HealthFigures(windows, rate, average, last_run, latest[1] if latest else None)
