"""Workflows: CRUD, validation, plan caps (also under concurrency) and delete with everything it owns."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.conftest import (
    ClientFactory,
    assert_error,
    create_workflow,
    http_step,
    insert_run,
    set_plan,
    workflow_body,
)


class TestCreate:
    async def test_defaults_and_result_shape(self, api: httpx.AsyncClient, department_id: int) -> None:
        created = await create_workflow(api, Description="For every new call")
        assert created["DepartmentId"] == department_id
        assert created["IsEnabled"] is True
        assert created["MaxRetryCount"] == 3
        assert created["RetryBackoffBaseSeconds"] == 5
        assert created["UpdatedOn"] is None
        assert created["CreatedOn"].endswith("Z")
        assert created["Steps"] == []

    async def test_max_retry_count_above_ceiling_is_stored_as_five(self, api: httpx.AsyncClient) -> None:
        created = await create_workflow(api, MaxRetryCount=99)
        assert created["MaxRetryCount"] == 5
        fetched = await api.get(f"/api/v4/workflows/{created['WorkflowId']}")
        assert fetched.json()["MaxRetryCount"] == 5

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"TriggerEventType": 0}, "Name"),
            (workflow_body(Name=""), "Name"),
            (workflow_body(Name="   "), "Name"),
            (workflow_body(Name="x" * 251), "Name"),
            (workflow_body(Description="x" * 1001), "Description"),
            (workflow_body(TriggerEventType=28), "TriggerEventType"),
            (workflow_body(TriggerEventType=-1), "TriggerEventType"),
            ({"Name": "n"}, "TriggerEventType"),
            (workflow_body(MaxRetryCount=-1), "MaxRetryCount"),
            (workflow_body(RetryBackoffBaseSeconds=0), "RetryBackoffBaseSeconds"),
            (workflow_body(RetryBackoffBaseSeconds=3601), "RetryBackoffBaseSeconds"),
            (workflow_body(IsEnabled="maybe"), "IsEnabled"),
            (workflow_body(Colour="red"), "Colour"),
            (workflow_body(Name="nul\x00byte"), "NUL"),
        ],
    )
    async def test_invalid_input_is_400_naming_the_field(
        self, api: httpx.AsyncClient, body: dict[str, object], field: str
    ) -> None:
        body_response = assert_error(await api.post("/api/v4/workflows", json=body), 400, field)
        assert body_response["Error"] == "ValidationError"

    async def test_body_that_is_not_json_is_400(self, api: httpx.AsyncClient) -> None:
        response = await api.post(
            "/api/v4/workflows", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert_error(response, 400, "JSON")

    async def test_body_over_one_mib_is_413(self, api: httpx.AsyncClient) -> None:
        response = await api.post("/api/v4/workflows", json=workflow_body(Description="x" * (1024 * 1024)))
        assert_error(response, 413)


class TestPlanCaps:
    async def test_free_plan_allows_three(self, api: httpx.AsyncClient) -> None:
        for n in range(3):
            await create_workflow(api, Name=f"w{n}")
        assert_error(await api.post("/api/v4/workflows", json=workflow_body()), 400, "Free", "3")

    async def test_paid_plan_allows_twenty_eight(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        await set_plan(db, department_id, "Paid")
        for n in range(28):
            await create_workflow(api, Name=f"w{n}")
        assert_error(await api.post("/api/v4/workflows", json=workflow_body()), 400, "Paid", "28")
        assert len((await api.get("/api/v4/workflows")).json()) == 28

    async def test_simultaneous_creates_never_pass_the_last_slot(self, api: httpx.AsyncClient) -> None:
        await create_workflow(api, Name="w0")
        await create_workflow(api, Name="w1")
        responses = await asyncio.gather(
            *(api.post("/api/v4/workflows", json=workflow_body(Name=f"r{n}")) for n in range(6))
        )
        assert sorted(r.status_code for r in responses) == [200] + [400] * 5
        assert len((await api.get("/api/v4/workflows")).json()) == 3


class TestReadUpdateDelete:
    async def test_list_and_get_return_steps_ordered_by_step_order(self, api: httpx.AsyncClient) -> None:
        workflow = await create_workflow(api)
        wid = workflow["WorkflowId"]
        for order in (3, 1, 2):
            response = await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step(StepOrder=order))
            assert response.status_code == 200, response.text
        fetched = (await api.get(f"/api/v4/workflows/{wid}")).json()
        assert [s["StepOrder"] for s in fetched["Steps"]] == [1, 2, 3]
        listed = (await api.get("/api/v4/workflows")).json()
        assert [w["WorkflowId"] for w in listed] == [wid]
        assert [s["StepOrder"] for s in listed[0]["Steps"]] == [1, 2, 3]

    async def test_update_replaces_fields_and_sets_updated_on(self, api: httpx.AsyncClient) -> None:
        workflow = await create_workflow(api)
        response = await api.put(
            f"/api/v4/workflows/{workflow['WorkflowId']}",
            json=workflow_body(
                Name="Renamed",
                TriggerEventType=3,
                IsEnabled=False,
                MaxRetryCount=7,
                RetryBackoffBaseSeconds=60,
            ),
        )
        assert response.status_code == 200, response.text
        updated = response.json()
        assert (updated["Name"], updated["TriggerEventType"], updated["IsEnabled"]) == ("Renamed", 3, False)
        assert (updated["MaxRetryCount"], updated["RetryBackoffBaseSeconds"]) == (5, 60)
        assert updated["UpdatedOn"] is not None
        assert updated["UpdatedOn"].endswith("Z")
        assert updated["CreatedOn"] == workflow["CreatedOn"]

    async def test_update_validates_like_create(self, api: httpx.AsyncClient) -> None:
        workflow = await create_workflow(api)
        response = await api.put(f"/api/v4/workflows/{workflow['WorkflowId']}", json=workflow_body(Name=""))
        assert_error(response, 400, "Name")

    async def test_unknown_workflow_is_404(self, api: httpx.AsyncClient) -> None:
        assert_error(await api.get("/api/v4/workflows/2147483000"), 404)
        assert_error(await api.get("/api/v4/workflows/0"), 400)
        assert_error(await api.get("/api/v4/workflows/abc"), 400)

    async def test_delete_removes_steps_runs_and_logs(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        workflow = await create_workflow(api)
        wid = workflow["WorkflowId"]
        step = (await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step())).json()
        run_id = await insert_run(db, wid, department_id, status=2)
        async with db.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO workflow_run_logs (workflow_run_id, workflow_step_id, attempt_number, status, started_on) "
                    "VALUES (:r, :s, 1, 2, now())"
                ),
                {"r": run_id, "s": step["WorkflowStepId"]},
            )
        response = await api.delete(f"/api/v4/workflows/{wid}")
        assert response.status_code == 200, response.text
        assert_error(await api.get(f"/api/v4/workflows/{wid}"), 404)
        async with db.connect() as conn:
            counts = (
                await conn.execute(
                    text(
                        "SELECT (SELECT count(*) FROM workflow_steps WHERE workflow_id = :w),"
                        "       (SELECT count(*) FROM workflow_runs WHERE workflow_id = :w),"
                        "       (SELECT count(*) FROM workflow_run_logs WHERE workflow_run_id = :r)"
                    ),
                    {"w": wid, "r": run_id},
                )
            ).one()
        assert tuple(counts) == (0, 0, 0)
        assert_error(await api.delete(f"/api/v4/workflows/{wid}"), 404)

    async def test_delete_while_a_run_is_being_inserted_leaves_no_run_behind(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        workflow = await create_workflow(api)
        wid = workflow["WorkflowId"]
        async with db.connect() as dispatcher:
            transaction = await dispatcher.begin()
            await dispatcher.execute(
                text(
                    "INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, "
                    "attempt_number, is_test) VALUES (:w, :d, 0, 0, 'concurrent', 1, false)"
                ),
                {"w": wid, "d": department_id},
            )
            deletion = asyncio.create_task(api.delete(f"/api/v4/workflows/{wid}"))
            await asyncio.sleep(0.5)
            assert not deletion.done()  # the row lock waits for the inserting transaction
            await transaction.commit()
        assert (await deletion).status_code == 200
        async with db.connect() as conn:
            left = (
                await conn.execute(
                    text("SELECT count(*) FROM workflow_runs WHERE workflow_id = :w"), {"w": wid}
                )
            ).scalar_one()
        assert left == 0


async def test_a_freed_slot_can_be_used_again(api: httpx.AsyncClient) -> None:
    ids = [(await create_workflow(api, Name=f"w{n}"))["WorkflowId"] for n in range(3)]
    assert (await api.delete(f"/api/v4/workflows/{ids[0]}")).status_code == 200
    await create_workflow(api, Name="again")


async def test_other_departments_do_not_count(
    api: httpx.AsyncClient, client_for: ClientFactory, department_id: int
) -> None:
    async with client_for(department_id + 500_000, "DepartmentAdmin") as other:
        for n in range(3):
            await create_workflow(other, Name=f"o{n}")
    await create_workflow(api)
