"""POST /{id}/test: the run goes through the executor like a real event and comes back with its logs."""

from __future__ import annotations

import json

import httpx

from tests.api.conftest import assert_error, create_workflow
from tests.peers.https_server import HttpsPeer
from tests.peers.tls import LocalCA
from tests.support.helpers import workflow_with_http_step


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
    assert_error(await api.post("/api/v4/workflows/2147483000/test"), 404)
