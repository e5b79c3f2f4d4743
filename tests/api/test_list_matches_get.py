"""The workflow list (JSON built by PostgreSQL) says exactly what GET /{id} (built in Python) says."""

from __future__ import annotations

import httpx

from tests.api.conftest import set_plan


async def test_list_equals_each_workflow_read_alone(api: httpx.AsyncClient, db, department_id: int) -> None:
    await set_plan(db, department_id, "Paid")
    for i in range(3):
        created = await api.post(
            "/api/v4/workflows",
            json={
                "Name": f'Fire "{i}" — ünïcode\\',
                "Description": None if i else "multi\nline",
                "TriggerEventType": i,
                "MaxRetryCount": i,
                "IsEnabled": i != 1,
            },
        )
        assert created.status_code == 200, created.text
        workflow_id = created.json()["WorkflowId"]
        for order in (2, 1):
            step = await api.post(
                f"/api/v4/workflows/{workflow_id}/steps",
                json={
                    "ActionType": 3,
                    "StepOrder": order,
                    "OutputTemplate": '{"name": "{{ call.name }}"}\n',
                    "ActionConfig": '{"url": "https://example.org/hook"}',
                    "ConditionExpression": "call.priority > 1" if order == 1 else None,
                },
            )
            assert step.status_code == 200, step.text
        if i == 2:
            updated = await api.put(
                f"/api/v4/workflows/{workflow_id}", json={"Name": "renamed", "TriggerEventType": 5}
            )
            assert updated.status_code == 200, updated.text

    listed = await api.get("/api/v4/workflows")
    assert listed.status_code == 200
    assert listed.headers["content-type"].startswith("application/json")
    singles = [(await api.get(f"/api/v4/workflows/{w['WorkflowId']}")).json() for w in listed.json()]
    assert listed.json() == singles
    assert [len(w["Steps"]) for w in singles] == [2, 2, 2]
    assert singles[2]["UpdatedOn"] is not None
    assert [s["StepOrder"] for s in singles[0]["Steps"]] == [1, 2]


async def test_empty_department_lists_an_empty_array(api: httpx.AsyncClient) -> None:
    listed = await api.get("/api/v4/workflows")
    assert listed.status_code == 200
    assert listed.json() == []
