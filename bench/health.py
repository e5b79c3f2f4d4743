"""`health` (issue #7): p50/p95 of ``GET /api/v4/workflows/{id}/health`` with 1,000,000 runs stored for
the department, all of them on the workflow asked about (the worst case), spread over the last 29
days, 1 in 10 failed, with the hourly rollups the health service would have written for them (the
endpoint reads those plus the runs of one partial hour per window). One client, one request at a
time: a latency figure, not a throughput one. The reply is checked to count all the runs.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from bench.api import ApiServer, load
from bench.harness import say
from bench.stack import BenchStack
from bench.workload import seed_departments
from shared.runs.sql import COMPLETED, FAILED

HEALTH_DEPARTMENT = 100_002

INSERT_RUNS = text(
    """
    INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, attempt_number,
                               is_test, input_payload, occurred_on, queued_on, started_on, completed_on,
                               error_message)
    SELECT :workflow_id, :department_id, CASE WHEN g % 10 = 0 THEN 3 ELSE 2 END, 0, 'health-' || g, 1, false,
           NULL, q, q, q, q + interval '120 milliseconds',
           CASE WHEN g % 10 = 0 THEN 'Step 1 (CallApiPost) failed: HTTP 503' END
    FROM generate_series(1, CAST(:n AS int)) g, LATERAL (SELECT now() - (g % 2500000) * interval '1 second' AS q) t
    """
)

# What the health service's consumer would have accumulated for those runs (services/health/rollups.py).
ROLLUPS = text(
    f"""
    INSERT INTO health_rollups (workflow_id, bucket_start, total_runs, success_runs, failed_runs, duration_sum_ms,
                                duration_count)
    SELECT workflow_id, date_trunc('hour', queued_on), count(*), count(*) FILTER (WHERE status = {COMPLETED}),
           count(*) FILTER (WHERE status = {FAILED}),
           coalesce(sum(floor(extract(epoch FROM completed_on - started_on) * 1000)::bigint)
                    FILTER (WHERE status = {COMPLETED}), 0),
           count(*) FILTER (WHERE status = {COMPLETED})
    FROM workflow_runs WHERE workflow_id = :workflow_id GROUP BY 1, 2
    """
)
LATEST = text(
    """
    INSERT INTO health_latest (workflow_id, last_run_on, last_error, last_error_on)
    SELECT :workflow_id, max(queued_on), 'Step 1 (CallApiPost) failed: HTTP 503', max(queued_on)
    FROM workflow_runs WHERE workflow_id = :workflow_id
    """
)


async def measure(stack: BenchStack, server: ApiServer, *, runs: int, seconds: float) -> dict[str, Any]:
    await seed_departments(
        stack.engine,
        first=HEALTH_DEPARTMENT,
        departments=1,
        sink_url=stack.sink_url,
        workflows_per_department=1,
    )
    async with stack.engine.begin() as conn:
        workflow_id = (
            await conn.execute(
                text("SELECT workflow_id FROM workflows WHERE department_id = :d"), {"d": HEALTH_DEPARTMENT}
            )
        ).scalar_one()
        say(f"health: storing {runs:,} runs")
        await conn.execute(
            INSERT_RUNS, {"workflow_id": workflow_id, "department_id": HEALTH_DEPARTMENT, "n": runs}
        )
        await conn.execute(ROLLUPS, {"workflow_id": workflow_id})
        await conn.execute(LATEST, {"workflow_id": workflow_id})
    async with stack.engine.connect() as conn:
        await conn.execute(text("ANALYZE workflow_runs"))
        await conn.execute(text("ANALYZE health_rollups"))
    from shared.auth import issue_token

    token = issue_token(
        stack.settings,
        department_id=HEALTH_DEPARTMENT,
        roles=["DepartmentAdmin"],
        user_id="bench",
        ttl_s=3600,
    )
    async with httpx.AsyncClient() as client:
        reply = await client.get(
            server.url(f"/api/v4/workflows/{workflow_id}/health"),
            headers={"Authorization": f"Bearer {token}"},
        )
    if reply.status_code != 200 or str(runs) not in reply.text:
        raise RuntimeError(
            f"health reply does not count the {runs} runs: {reply.status_code} {reply.text[:300]}"
        )
    result = await load(server.url(f"/api/v4/workflows/{workflow_id}/health"), token, seconds, concurrency=1)
    say(
        f"health: p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms over {result['requests']} requests"
    )
    return {
        "runs": runs,
        "p50_ms": round(result["p50_ms"], 2),
        "p95_ms": round(result["p95_ms"], 2),
        "requests": result["requests"],
    }
