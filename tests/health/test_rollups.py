"""Health figures from rollups against hand-computed expectations across the 24 h / 7 d / 30 d edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.health.figures import health_figures
from services.health.rebuild import rebuild_rollups
from services.health.rollups import Outcome, apply_outcomes
from shared.enums import RunStatus

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)

# (age, status, duration ms, error, is_test)
RUNS = [
    (timedelta(hours=1), RunStatus.Completed, 1000, None, False),
    (timedelta(hours=23, minutes=59), RunStatus.Failed, None, "A: newest failure", False),
    (timedelta(hours=24) - timedelta(seconds=1), RunStatus.Completed, 2000, None, False),
    (timedelta(hours=24) + timedelta(seconds=1), RunStatus.Failed, None, "B", False),
    (timedelta(days=7) - timedelta(minutes=1), RunStatus.Cancelled, None, None, False),
    (timedelta(days=7) + timedelta(minutes=1), RunStatus.Completed, 3000, None, False),
    (timedelta(days=30) - timedelta(seconds=10), RunStatus.Completed, 4000, None, False),
    (timedelta(days=30) + timedelta(seconds=10), RunStatus.Failed, None, "C: too old", False),
    (timedelta(hours=2), RunStatus.Completed, 50, None, True),  # test runs are not health
]


async def seed(db: AsyncEngine, department_id: int) -> tuple[int, list[Outcome]]:
    outcomes = []
    async with db.begin() as conn:
        workflow_id = (
            await conn.execute(
                text(
                    "INSERT INTO workflows (department_id, name, trigger_event_type, is_enabled, max_retry_count, "
                    "retry_backoff_base_seconds) VALUES (:d, 'health', 0, true, 3, 5) RETURNING workflow_id"
                ),
                {"d": department_id},
            )
        ).scalar_one()
        for i, (age, status, duration, error, is_test) in enumerate(RUNS):
            queued = NOW - age
            started = queued + timedelta(milliseconds=200)
            completed = started + timedelta(milliseconds=duration or 1000)
            run_id = (
                await conn.execute(
                    text(
                        "INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, "
                        "attempt_number, is_test, queued_on, started_on, completed_on, error_message) "
                        "VALUES (:w, :d, :s, 0, :e, 1, :t, :q, :st, :c, :err) RETURNING workflow_run_id"
                    ),
                    {
                        "w": workflow_id,
                        "d": department_id,
                        "s": int(status),
                        "e": f"health-{i}",
                        "t": is_test,
                        "q": queued,
                        "st": started,
                        "c": completed,
                        "err": error,
                    },
                )
            ).scalar_one()
            if not is_test:  # the health service ignores test outcomes before they reach apply_outcomes
                outcomes.append(Outcome(run_id, workflow_id, status, queued, started, completed, error))
        # an unfinished run counts in the totals (not in the rollups yet, so from the runs table); marked
        # published, or a scheduler of another test of the session would hand it to an executor
        await conn.execute(
            text(
                "INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, "
                "attempt_number, is_test, queued_on, published_on) "
                "VALUES (:w, :d, 0, 0, 'pending', 1, false, :q, :q)"
            ),
            {"w": workflow_id, "d": department_id, "q": NOW - timedelta(hours=3)},
        )
    return workflow_id, outcomes


async def figures(db: AsyncEngine, department_id: int, workflow_id: int):
    async with db.connect() as conn:
        return await health_figures(conn, department_id, workflow_id, now=NOW)


async def test_windows_match_hand_computed_figures(db, department_id):
    workflow_id, outcomes = await seed(db, department_id)
    async with db.begin() as conn:
        assert await apply_outcomes(conn, outcomes) == len(outcomes)
    result = await figures(db, department_id, workflow_id)
    day, week, month = result.windows["24h"], result.windows["7d"], result.windows["30d"]
    assert (day.total, day.success, day.failed) == (4, 2, 1)
    assert (week.total, week.success, week.failed) == (6, 2, 2)
    assert (month.total, month.success, month.failed) == (8, 4, 2)
    assert result.success_rate_percent == 50.0
    assert result.average_duration_ms == 2500
    assert result.last_run_on == NOW - timedelta(hours=1)
    assert result.last_error == "A: newest failure"


async def test_redelivered_outcomes_are_counted_once(db, department_id):
    workflow_id, outcomes = await seed(db, department_id)
    async with db.begin() as conn:
        await apply_outcomes(conn, outcomes)
    async with db.begin() as conn:
        assert await apply_outcomes(conn, outcomes + outcomes[:3]) == 0
    assert (await figures(db, department_id, workflow_id)).windows["30d"].total == 8


async def test_rebuild_from_runs_equals_incremental_rollups(db, department_id):
    workflow_id, outcomes = await seed(db, department_id)
    async with db.begin() as conn:
        await apply_outcomes(conn, outcomes)

    async def snapshot():
        async with db.connect() as conn:
            rollups = (
                await conn.execute(
                    text(
                        "SELECT workflow_id, bucket_start, total_runs, success_runs, failed_runs, duration_sum_ms, "
                        "duration_count FROM health_rollups WHERE workflow_id = :w ORDER BY 2"
                    ),
                    {"w": workflow_id},
                )
            ).all()
            latest = (
                await conn.execute(
                    text(
                        "SELECT workflow_id, last_run_on, last_error FROM health_latest WHERE workflow_id = :w"
                    ),
                    {"w": workflow_id},
                )
            ).all()
        return rollups, latest

    before = await snapshot()
    before_figures = await figures(db, department_id, workflow_id)
    assert await rebuild_rollups(db) >= len(before[0])
    assert await snapshot() == before
    assert await figures(db, department_id, workflow_id) == before_figures
