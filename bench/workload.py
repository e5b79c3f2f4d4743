"""What the bench stores and sends: departments, workflows with one CallApiPost step to the sink,
events, runs and the request bodies those runs render to.

Departments are on the Paid plan and trigger on CallAdded/CallUpdated/CallClosed (rate-exempt on that
plan), so every event becomes a run due now: the figures measure the pipeline, not the limits.
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

WORKFLOWS_PER_DEPARTMENT = 3  # one per event type 0, 1, 2
TEMPLATE = '{"call": "{{ call.name }}", "id": {{ call.id }}, "sent": {{ bench.sent }}}'
CALL_NAME = "Structure Fire"


def body_for(call_id: int, sent_us: int = 0) -> str:
    """Exactly what TEMPLATE renders for an event built by :func:`event` (the httpx baseline posts it)."""
    return f'{{"call": "{CALL_NAME}", "id": {call_id}, "sent": {sent_us}}}'


def payload(call_id: int, sent_us: int = 0) -> dict[str, Any]:
    return {"call": {"id": call_id, "name": CALL_NAME, "priority": 3}, "bench": {"sent": sent_us}}


def now_us() -> int:
    return time.time_ns() // 1000


def event(event_id: str, department_id: int, event_type: int, call_id: int, *, sent_us: int = 0) -> bytes:
    return orjson.dumps(
        {
            "EventId": event_id,
            "DepartmentId": department_id,
            "EventType": event_type,
            "OccurredOn": "2026-11-29T12:00:00Z",
            "Payload": payload(call_id, sent_us),
        }
    )


async def _seed(
    engine: AsyncEngine, *, first: int, last: int, workflows: str, params: dict[str, object]
) -> None:
    """Paid departments ``first..last``, the workflows ``workflows`` inserts (SQL over ``params``) and one
    CallApiPost step each, to the sink; then no change rows and fresh statistics."""
    params = {**params, "first": first, "last": last, "template": TEMPLATE}
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO departments (department_id, plan) SELECT d, 'Paid' FROM generate_series(CAST(:first AS int), CAST(:last AS int)) d "
                "ON CONFLICT (department_id) DO UPDATE SET plan = 'Paid'"
            ),
            params,
        )
        await conn.execute(text(workflows), params)
        await conn.execute(
            text(
                "INSERT INTO workflow_steps (workflow_id, action_type, step_order, output_template, action_config, "
                "is_enabled) SELECT workflow_id, 3, 1, :template, :config, true FROM workflows "
                "WHERE department_id BETWEEN CAST(:first AS int) AND CAST(:last AS int)"
            ),
            params,
        )
        # The services start after seeding and load everything; the trigger's change rows would only
        # make the first index refresh reload every department.
        await conn.execute(text("DELETE FROM workflow_changes"))
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE"))


async def seed_departments(
    engine: AsyncEngine,
    *,
    first: int,
    departments: int,
    sink_url: str,
    workflows_per_department: int = WORKFLOWS_PER_DEPARTMENT,
) -> None:
    """Departments ``first..first+departments-1``, each with workflows on event types 0..n-1 (mod 3)."""
    await _seed(
        engine,
        first=first,
        last=first + departments - 1,
        workflows="INSERT INTO workflows (department_id, name, trigger_event_type, is_enabled, max_retry_count, "
        "retry_backoff_base_seconds) "
        "SELECT CAST(:first AS int) + k / CAST(:per AS int), 'Bench workflow ' || k, k % CAST(:per AS int) % 3, true, 3, 60 "
        "FROM generate_series(0, (CAST(:last AS int) - CAST(:first AS int) + 1) * CAST(:per AS int) - 1) k",
        params={"per": workflows_per_department, "config": json.dumps({"url": sink_url})},
    )


async def seed_workflows(engine: AsyncEngine, *, total: int, sink_url: str, first_department: int = 1) -> int:
    """``total`` workflows, three per department (the last department may have fewer); returns departments."""
    departments = -(-total // WORKFLOWS_PER_DEPARTMENT)
    await seed_departments(engine, first=first_department, departments=departments, sink_url=sink_url)
    extra = departments * WORKFLOWS_PER_DEPARTMENT - total
    if extra:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "DELETE FROM workflows WHERE workflow_id IN (SELECT workflow_id FROM workflows "
                    "WHERE department_id = CAST(:d AS int) ORDER BY workflow_id DESC LIMIT CAST(:n AS int))"
                ),
                {"d": first_department + departments - 1, "n": extra},
            )
            await conn.execute(text("DELETE FROM workflow_changes"))
    return departments


async def seed_equal_spread(engine: AsyncEngine, *, total: int, departments: int, sink_url: str) -> None:
    """``total`` workflows over ``departments`` Paid departments, of which one per department is
    *touched*: triggered by a call event type (department mod 3), the only workflow of its department
    on that type. The others trigger on event types the bench never sends (3..27). Events aimed at the
    touched ones (:func:`touched_keys`) then make one run each whatever the total, so the number of
    workflows touched and the events per workflow are the same at every size."""
    await _seed(
        engine,
        first=1,
        last=departments,
        workflows="INSERT INTO workflows (department_id, name, trigger_event_type, is_enabled, max_retry_count, "
        "retry_backoff_base_seconds) "
        "SELECT 1 + k % CAST(:last AS int), 'Bench workflow ' || k, "
        "CASE WHEN k < CAST(:last AS int) THEN (1 + k) % 3 ELSE 3 + k % 25 END, true, 3, 60 "
        "FROM generate_series(0, CAST(:total AS int) - 1) k",
        params={"total": total, "config": json.dumps({"url": sink_url})},
    )


def touched_keys(departments: int) -> list[tuple[int, int]]:
    """(department, event type) of the touched workflow of each department (:func:`seed_equal_spread`)."""
    return [(d, d % 3) for d in range(1, departments + 1)]


async def workflow_keys(engine: AsyncEngine, first: int, last: int) -> list[tuple[int, int]]:
    """(department, event type) of every enabled workflow in the range: what events are aimed at."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT department_id, trigger_event_type FROM workflows WHERE department_id BETWEEN CAST(:a AS int) AND CAST(:b AS int) "
                "ORDER BY workflow_id"
            ),
            {"a": first, "b": last},
        )
        return [(int(d), int(t)) for d, t in rows]
