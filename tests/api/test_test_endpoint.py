"""POST /{id}/test: the run goes through the executor like a real event and comes back with its logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from tests.api.conftest import assert_error, create_workflow
from tests.conftest import api_instance
from tests.peers.https_server import HttpsPeer
from tests.peers.tls import LocalCA
from tests.support.helpers import execute, fetch, workflow_with_http_step


async def test_sample_payload_run_completes_with_logs(
    api: httpx.AsyncClient, services: dict[str, object], local_ca: LocalCA, department_id: int
) -> None:
    async with HttpsPeer(local_ca, hostnames=["127.0.0.1", "localhost"]) as receiver:
        # Disabled on purpose: a test run works for disabled workflows too.
        wid, step_id = await workflow_with_http_step(
            api,
            receiver.url("/units", host="127.0.0.1"),
            template='{"unit": "{{ unit.name }}"}',
            trigger=3,
            IsEnabled=False,
        )
        response = await api.post(f"/api/v4/workflows/{wid}/test", timeout=60)
        assert response.status_code == 200, response.text
        run = response.json()
        assert (run["Status"], run["IsTest"], run["WorkflowId"], run["TriggerEventType"]) == (2, True, wid, 3)
        assert len(run["Logs"]) == 1
        assert run["Logs"][0]["Status"] == 2
        assert run["Logs"][0]["WorkflowStepId"] == step_id
        requests = receiver.requests_to("POST", "/units")
        assert len(requests) == 1
        assert requests[0].json()["unit"]  # the sample payload's unit name was rendered


async def test_custom_payload_is_used(
    api: httpx.AsyncClient, services: dict[str, object], local_ca: LocalCA
) -> None:
    async with HttpsPeer(local_ca, hostnames=["127.0.0.1", "localhost"]) as receiver:
        wid = (await create_workflow(api))["WorkflowId"]
        await api.post(
            f"/api/v4/workflows/{wid}/steps",
            json={
                "ActionType": 3,
                "StepOrder": 1,
                "OutputTemplate": "{{ call.name }}",
                "ActionConfig": json.dumps(
                    {"url": receiver.url("/calls", host="127.0.0.1"), "contentType": "text/plain"}
                ),
            },
        )
        payload = {"call": {"name": "Brush Fire Test"}}
        response = await api.post(
            f"/api/v4/workflows/{wid}/test", json={"EventPayloadJson": json.dumps(payload)}, timeout=60
        )
        assert response.status_code == 200, response.text
        assert response.json()["Logs"][0]["RenderedOutput"] == "Brush Fire Test"
        assert receiver.requests_to("POST", "/calls")[0].body == b"Brush Fire Test"


async def test_failed_step_is_reported(api: httpx.AsyncClient, services: dict[str, object]) -> None:
    wid = (await create_workflow(api, MaxRetryCount=0))["WorkflowId"]
    # A private address that the egress guard refuses (only 127.0.0.0/8 is allowed in the suite).
    await api.post(
        f"/api/v4/workflows/{wid}/steps",
        json={
            "ActionType": 2,
            "StepOrder": 1,
            "OutputTemplate": "x",
            "ActionConfig": json.dumps({"url": "https://10.255.255.1/never"}),
        },
    )
    response = await api.post(f"/api/v4/workflows/{wid}/test", timeout=60)
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["Status"] == 3
    assert run["Logs"][0]["Status"] == 3
    assert run["Logs"][0]["ErrorMessage"]


async def test_payload_must_be_a_json_object(api: httpx.AsyncClient) -> None:
    wid = (await create_workflow(api))["WorkflowId"]
    for payload in ("[1]", "not json", '"text"', "42"):
        assert_error(
            await api.post(f"/api/v4/workflows/{wid}/test", json={"EventPayloadJson": payload}),
            400,
            "EventPayloadJson",
        )
    assert_error(
        await api.post(f"/api/v4/workflows/{wid}/test", json={"EventPayloadJson": '{"a": "nul\\u0000"}'}),
        400,
        "NUL",
    )
    assert_error(
        await api.post(
            f"/api/v4/workflows/{wid}/test", json={"EventPayloadJson": '{"a": 1' + 30 * "0" + "}"}
        ),
        400,
        "64 bits",
    )
    assert_error(await api.post("/api/v4/workflows/2147483000/test"), 404)


@pytest.fixture
async def quick_api(settings: Settings, department_id: int) -> AsyncIterator[httpx.AsyncClient]:
    """An API that waits 8 s (not 30) for a test run, for the runs the per-minute limit defers."""
    async with api_instance(settings.model_copy(update={"test_wait_s": 8.0}), department_id) as (_, client):
        yield client


async def test_free_plan_tests_are_deferred_past_five_a_minute(
    quick_api: httpx.AsyncClient, services: dict[str, object], db: AsyncEngine
) -> None:
    """The per-minute limit holds for test runs: of seven tests sent at once, five run now; the others
    are deferred to the next minute (returned Pending after the wait), even for a disabled workflow."""
    wid = (await create_workflow(quick_api, IsEnabled=False))["WorkflowId"]
    second = datetime.now(UTC).second
    if second >= 45:
        await asyncio.sleep(61 - second)
    responses = await asyncio.gather(
        *(quick_api.post(f"/api/v4/workflows/{wid}/test", timeout=60) for _ in range(7))
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    statuses = sorted(r.json()["Status"] for r in responses)
    assert statuses == [0, 0, 2, 2, 2, 2, 2], statuses  # two Pending, five Completed (no steps)
    assert all(r.json()["IsTest"] for r in responses)
    pending = [r.json()["WorkflowRunId"] for r in responses if r.json()["Status"] == 0]
    rows = await fetch(
        db,
        "SELECT next_attempt_on > now(), is_test FROM workflow_runs WHERE workflow_run_id = ANY(:ids)",
        ids=pending,
    )
    assert rows == [(True, True), (True, True)]


async def test_free_plan_tests_stop_at_the_daily_limit_with_429(
    api: httpx.AsyncClient, services: dict[str, object], db: AsyncEngine, department_id: int
) -> None:
    """48 of the free plan's 50 daily runs used: of four tests sent at once, two run and two are
    refused with 429 naming the limit, whether the API or the dispatcher notices first; a further test
    is refused at once. None of them shows in the health figures."""
    wid = (await create_workflow(api))["WorkflowId"]
    await execute(
        db,
        "INSERT INTO department_daily_usage (department_id, usage_date, channel, used) "
        "VALUES (:d, (now() AT TIME ZONE 'UTC')::date, 'runs', 48)",
        d=department_id,
    )
    responses = await asyncio.gather(
        *(api.post(f"/api/v4/workflows/{wid}/test", timeout=60) for _ in range(4))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 429, 429], [r.text for r in responses]
    for response in responses:
        if response.status_code == 429:
            assert assert_error(response, 429, "50 runs per day")["Error"] == "RunLimitReached"
    assert_error(await api.post(f"/api/v4/workflows/{wid}/test"), 429, "daily run limit", "Free plan")
    used = await fetch(
        db,
        "SELECT used FROM department_daily_usage WHERE department_id = :d AND channel = 'runs'",
        d=department_id,
    )
    assert used[0][0] >= 50
    health = await api.get(f"/api/v4/workflows/{wid}/health")
    assert health.status_code == 200, health.text
    assert health.json()["TotalRuns24h"] == 0
