"""GET /{id}/health: windows by queue time, success rate over 30 days, durations, last run and error."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.health.rebuild import rebuild_rollups
from tests.api.conftest import assert_error, create_workflow, insert_run


async def test_figures_from_runs(api: httpx.AsyncClient, db: AsyncEngine, department_id: int) -> None:
    wid = (await create_workflow(api))["WorkflowId"]
    # Within 24 h: 2 completed (100 ms, 300 ms), 1 failed, 1 pending.
    await insert_run(db, wid, department_id, status=2, queued_ago="1 hour", duration_ms=100)
    await insert_run(db, wid, department_id, status=2, queued_ago="2 hours", duration_ms=300)
    await insert_run(
        db, wid, department_id, status=3, queued_ago="3 hours", error="SMTP 550 mailbox unavailable"
    )
    await insert_run(db, wid, department_id, status=0, queued_ago="5 minutes")
    # 3 days ago: 1 completed (200 ms), 1 failed (inserted last, but not the most recent failure).
    await insert_run(db, wid, department_id, status=2, queued_ago="3 days", duration_ms=200)
    await insert_run(db, wid, department_id, status=3, queued_ago="3 days", error="an older error")
    # 20 days ago: 1 cancelled; 40 days ago: 1 completed (outside every window).
    await insert_run(db, wid, department_id, status=4, queued_ago="20 days")
    await insert_run(db, wid, department_id, status=2, queued_ago="40 days", duration_ms=9000)
    # Test runs never count.
    await insert_run(
        db, wid, department_id, status=3, queued_ago="1 minute", is_test=True, error="test failure"
    )

    # The health service folds finished runs into rollups as their outcomes arrive; rebuild does the same.
    await rebuild_rollups(db)
    response = await api.get(f"/api/v4/workflows/{wid}/health")
    assert response.status_code == 200, response.text
    health = response.json()
    assert health == {
        "WorkflowId": wid,
        "TotalRuns24h": 4,
        "SuccessRuns24h": 2,
        "FailedRuns24h": 1,
        "TotalRuns7d": 6,
        "SuccessRuns7d": 3,
        "FailedRuns7d": 2,
        "TotalRuns30d": 7,
        "SuccessRuns30d": 3,
        "FailedRuns30d": 2,
        "SuccessRatePercent": 42.9,
        "AverageDurationMs": 200,
        "LastRunOn": health["LastRunOn"],
        "LastError": "SMTP 550 mailbox unavailable",
    }
    assert health["LastRunOn"].endswith("Z")


async def test_no_runs(api: httpx.AsyncClient) -> None:
    wid = (await create_workflow(api))["WorkflowId"]
    health = (await api.get(f"/api/v4/workflows/{wid}/health")).json()
    assert health["TotalRuns30d"] == 0
    assert health["SuccessRatePercent"] == 0
    assert health["AverageDurationMs"] == 0
    assert health["LastRunOn"] is None
    assert health["LastError"] is None


@pytest.mark.parametrize("path", ["/api/v4/workflows/2147483000/health", "/api/v4/workflows/-1/health"])
async def test_unknown_workflow(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(path)
    assert response.status_code in (400, 404)
    assert_error(response, response.status_code)
