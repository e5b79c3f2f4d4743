"""Runs: pages, pending, logs, cancel (409 when finished), clear; runs of other departments are 404."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from tests.api.conftest import ClientFactory, assert_error, create_workflow, insert_run


class TestPages:
    async def test_newest_first_with_page_and_page_size(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        first = (await create_workflow(api, Name="a"))["WorkflowId"]
        second = (await create_workflow(api, Name="b"))["WorkflowId"]
        ids = [await insert_run(db, first if n % 2 else second, department_id, status=2) for n in range(25)]
        newest_first = sorted(ids, reverse=True)
        page1 = (await api.get("/api/v4/workflows/runs")).json()
        assert [r["WorkflowRunId"] for r in page1] == newest_first[:20]
        page2 = (await api.get("/api/v4/workflows/runs", params={"page": 2})).json()
        assert [r["WorkflowRunId"] for r in page2] == newest_first[20:]
        small = (await api.get("/api/v4/workflows/runs", params={"page": 3, "pageSize": 4})).json()
        assert [r["WorkflowRunId"] for r in small] == newest_first[8:12]
        assert (await api.get("/api/v4/workflows/runs", params={"page": 9})).json() == []
        by_workflow = (await api.get(f"/api/v4/workflows/{first}/runs", params={"pageSize": 100})).json()
        assert {r["WorkflowId"] for r in by_workflow} == {first}
        assert len(by_workflow) == 12
        run = page1[0]
        assert set(run) == {
            "WorkflowRunId",
            "WorkflowId",
            "DepartmentId",
            "Status",
            "TriggerEventType",
            "EventId",
            "AttemptNumber",
            "IsTest",
            "QueuedOn",
            "StartedOn",
            "CompletedOn",
            "NextAttemptOn",
            "ErrorMessage",
        }
        assert run["QueuedOn"].endswith("Z")

    @pytest.mark.parametrize(
        "params",
        [{"page": 0}, {"page": -1}, {"pageSize": 0}, {"pageSize": 101}, {"page": "x"}, {"page": 2**40}],
    )
    async def test_bounds(self, api: httpx.AsyncClient, params: dict[str, Any]) -> None:
        assert_error(await api.get("/api/v4/workflows/runs", params=params), 400)
        workflow = await create_workflow(api)
        assert_error(await api.get(f"/api/v4/workflows/{workflow['WorkflowId']}/runs", params=params), 400)

    async def test_page_size_100_is_allowed(self, api: httpx.AsyncClient) -> None:
        assert (await api.get("/api/v4/workflows/runs", params={"pageSize": 100})).status_code == 200

    async def test_runs_of_unknown_workflow_are_404(self, api: httpx.AsyncClient) -> None:
        assert_error(await api.get("/api/v4/workflows/2147483000/runs"), 404)


class TestPendingLogsCancelClear:
    async def test_pending_lists_open_runs_only(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        wid = (await create_workflow(api))["WorkflowId"]
        open_ids = [await insert_run(db, wid, department_id, status=s) for s in (0, 1, 5)]
        for status in (2, 3, 4):
            await insert_run(db, wid, department_id, status=status)
        pending = (await api.get("/api/v4/workflows/runs/pending")).json()
        assert [r["WorkflowRunId"] for r in pending] == sorted(open_ids, reverse=True)

    async def test_logs_in_order(self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int) -> None:
        wid = (await create_workflow(api))["WorkflowId"]
        run_id = await insert_run(db, wid, department_id, status=3, error="boom")
        async with db.begin() as conn:
            for n, status in enumerate((2, 3)):
                await conn.execute(
                    text(
                        "INSERT INTO workflow_run_logs (workflow_run_id, workflow_step_id, attempt_number, status, "
                        "rendered_output, action_result, error_message, started_on, completed_on, duration_ms) "
                        "VALUES (:r, :s, 1, :st, 'out', 'HTTP 200', NULL, now() + make_interval(secs => :n), now(), 5)"
                    ),
                    {"r": run_id, "s": 100 + n, "st": status, "n": n},
                )
        logs = (await api.get(f"/api/v4/workflows/runs/{run_id}/logs")).json()
        assert [(entry["WorkflowStepId"], entry["Status"]) for entry in logs] == [(100, 2), (101, 3)]
        assert set(logs[0]) == {
            "WorkflowRunLogId",
            "WorkflowRunId",
            "WorkflowStepId",
            "AttemptNumber",
            "Status",
            "RenderedOutput",
            "ActionResult",
            "ErrorMessage",
            "StartedOn",
            "CompletedOn",
            "DurationMs",
        }
        assert_error(await api.get("/api/v4/workflows/runs/9223372036854775000/logs"), 404)

    async def test_cancel_open_run_then_409(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int, settings: Settings
    ) -> None:
        wid = (await create_workflow(api))["WorkflowId"]
        run_id = await insert_run(db, wid, department_id, status=5)
        consumer = AIOKafkaConsumer(
            settings.topic_results, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="latest"
        )
        await consumer.start()
        try:
            await consumer.seek_to_end()
            await asyncio.sleep(0.2)
            response = await api.post(f"/api/v4/workflows/runs/{run_id}/cancel")
            assert response.status_code == 200, response.text
            assert response.json()["Status"] == 4
            assert response.json()["CompletedOn"] is not None
            outcomes: list[str] = []
            async with asyncio.timeout(30):
                while not any(f'"RunId":{run_id},' in m for m in outcomes):
                    batch = await consumer.getmany(timeout_ms=500)
                    outcomes += [r.value.decode() for records in batch.values() for r in records]
        finally:
            await consumer.stop()
        assert_error(await api.post(f"/api/v4/workflows/runs/{run_id}/cancel"), 409, "finished")
        finished = await insert_run(db, wid, department_id, status=2)
        assert_error(await api.post(f"/api/v4/workflows/runs/{finished}/cancel"), 409)
        assert_error(await api.post("/api/v4/workflows/runs/9223372036854775000/cancel"), 404)

    async def test_clear_cancels_every_open_run(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        wid = (await create_workflow(api))["WorkflowId"]
        for status in (0, 1, 5, 2, 3):
            await insert_run(db, wid, department_id, status=status)
        assert (await api.post("/api/v4/workflows/runs/clear")).json() == {"Cancelled": 3}
        assert (await api.get("/api/v4/workflows/runs/pending")).json() == []
        assert (await api.post("/api/v4/workflows/runs/clear")).json() == {"Cancelled": 0}

    async def test_clear_leaves_other_departments_alone(
        self, api: httpx.AsyncClient, client_for: ClientFactory, db: AsyncEngine, department_id: int
    ) -> None:
        other_department = department_id + 500_000
        async with client_for(other_department, "DepartmentAdmin") as other:
            wid = (await create_workflow(other))["WorkflowId"]
            run_id = await insert_run(db, wid, other_department, status=0)
            assert (await api.post("/api/v4/workflows/runs/clear")).json() == {"Cancelled": 0}
            assert [
                r["WorkflowRunId"] for r in (await other.get("/api/v4/workflows/runs/pending")).json()
            ] == [run_id]
