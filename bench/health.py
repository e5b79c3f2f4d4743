"""`health` (issue #7): p50/p95 of ``GET /api/v4/workflows/{id}/health`` with 1,000,000 runs stored for
the department, all of them on the workflow asked about (the worst case), spread over the last 30
days, 1 in 10 failed. One client, one request at a time: a latency figure, not a throughput one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from bench.api import ApiServer, load
from bench.harness import say
from bench.stack import BenchStack
from bench.workload import seed_departments

HEALTH_DEPARTMENT = 100_002

INSERT_RUNS = text(
    """
    INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, attempt_number,
                               is_test, input_payload, occurred_on, queued_on, started_on, completed_on,
                               error_message)
    SELECT :workflow_id, :department_id, CASE WHEN g % 10 = 0 THEN 3 ELSE 2 END, 0, 'health-' || g, 1, false,
           NULL, q, q, q, q + interval '120 milliseconds',
           CASE WHEN g % 10 = 0 THEN 'Step 1 (CallApiPost) failed: HTTP 503' END
    FROM generate_series(1, :n) g, LATERAL (SELECT now() - (g % 2592000) * interval '1 second' AS q) t
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
    async with stack.engine.connect() as conn:
        await conn.execute(text("ANALYZE workflow_runs"))
    from shared.auth import issue_token

    token = issue_token(
        stack.settings,
        department_id=HEALTH_DEPARTMENT,
        roles=["DepartmentAdmin"],
        user_id="bench",
        ttl_s=3600,
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
