"""Steps: add, update, delete; templates, conditions, ActionConfig, webhook hosts, credentials, caps."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.conftest import (
    BEARER_DATA,
    ClientFactory,
    assert_error,
    create_credential,
    create_workflow,
    http_step,
    set_plan,
)


async def _workflow_id(api: httpx.AsyncClient) -> int:
    return int((await create_workflow(api))["WorkflowId"])


class TestAdd:
    async def test_happy_path_with_condition(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps",
            json=http_step(ConditionExpression="call.priority >= 2", IsEnabled=False),
        )
        assert response.status_code == 200, response.text
        step = response.json()
        assert step["WorkflowId"] == wid
        assert step["ConditionExpression"] == "call.priority >= 2"
        assert step["IsEnabled"] is False
        assert step["UpdatedOn"] is None
        assert json.loads(step["ActionConfig"]) == {"url": "https://cad.example.org/hook"}
        fetched = (await api.get(f"/api/v4/workflows/{wid}")).json()
        assert [s["WorkflowStepId"] for s in fetched["Steps"]] == [step["WorkflowStepId"]]

    async def test_template_syntax_error_names_line_and_column(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps",
            json=http_step(OutputTemplate="line one\n{% if call.priority %}unclosed"),
        )
        body = assert_error(response, 400, "OutputTemplate", "line 2")
        assert "column" in body["Message"]

    async def test_template_over_64_kb_is_400_not_truncated(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps", json=http_step(OutputTemplate="é" * 33_000)
        )
        assert_error(response, 400, "OutputTemplate", "64 KB")

    async def test_more_than_50_headers_is_400(self, api: httpx.AsyncClient) -> None:
        workflow = await create_workflow(api)
        path = f"/api/v4/workflows/{workflow['WorkflowId']}/steps"
        for count, status in ((50, 200), (51, 400), (373, 400)):
            headers = {f"X-H-{n}": "{{ call.notes | strip_html }}" for n in range(count)}
            config = json.dumps({"url": "https://cad.example.org/hook", "headers": headers})
            response = await api.post(path, json=http_step(ActionConfig=config))
            assert response.status_code == status, response.text
            if status == 400:
                assert_error(response, 400, "ActionConfig.headers", "at most 50 headers")

    async def test_include_is_refused_on_save(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps", json=http_step(OutputTemplate="{% include 'other' %}")
        )
        assert_error(response, 400, "OutputTemplate")

    async def test_invalid_condition_is_400(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps", json=http_step(ConditionExpression="call.priority >= ")
        )
        assert_error(response, 400, "ConditionExpression")

    @pytest.mark.parametrize(
        ("overrides", "words"),
        [
            ({"ActionConfig": "not json"}, ["ActionConfig", "JSON"]),
            ({"ActionConfig": "[1, 2]"}, ["ActionConfig", "object"]),
            (
                {"ActionConfig": json.dumps({"url": "http://cad.example.org/hook"})},
                ["ActionConfig.url", "https"],
            ),
            ({"ActionConfig": json.dumps({})}, ["ActionConfig.url", "required"]),
            (
                {"ActionConfig": json.dumps({"url": "https://x.example.org", "colour": 1})},
                ["ActionConfig.colour"],
            ),
            ({"ActionConfig": json.dumps({"url": "https://x.example.org/{{ call.id"})}, ["ActionConfig"]),
            (
                {"ActionType": 0, "ActionConfig": json.dumps({"to": "not-an-address", "subject": "s"})},
                ["ActionConfig.to"],
            ),
            ({"ActionType": 15}, ["ActionType"]),
            ({"StepOrder": 2**31}, ["StepOrder"]),
            ({"OutputTemplate": ""}, ["OutputTemplate"]),
            ({"Extra": True}, ["Extra"]),
        ],
    )
    async def test_invalid_step_is_400(
        self, api: httpx.AsyncClient, overrides: dict[str, object], words: list[str]
    ) -> None:
        wid = await _workflow_id(api)
        body = http_step(**overrides)
        body = {k: v for k, v in body.items() if v is not None}
        assert_error(await api.post(f"/api/v4/workflows/{wid}/steps", json=body), 400, *words)

    @pytest.mark.parametrize(
        ("action_type", "url", "ok"),
        [
            (9, "https://contoso.webhook.office.com/webhookb2/abc", True),
            (9, "https://evil.example.com/webhookb2/abc", False),
            (10, "https://hooks.slack.com/services/T0/B0/xyz", True),
            (10, "https://hooks.slack.com.evil.example/services/T0", False),
            (11, "https://discord.com/api/webhooks/1/abc", True),
            (11, "https://discord.com/channels/1/abc", False),
        ],
    )
    async def test_static_webhook_urls_follow_the_host_rules(
        self, api: httpx.AsyncClient, action_type: int, url: str, ok: bool
    ) -> None:
        wid = await _workflow_id(api)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps",
            json=http_step(ActionType=action_type, ActionConfig=json.dumps({"webhookUrl": url})),
        )
        if ok:
            assert response.status_code == 200, response.text
        else:
            assert_error(response, 400, "webhookUrl")

    async def test_webhook_step_needs_a_url_or_a_credential(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps", json=http_step(ActionType=10, ActionConfig="{}")
        )
        assert_error(response, 400, "webhookUrl")
        slack = await create_credential(
            api, 9, {"webhookUrl": "https://hooks.slack.com/services/T0/B0/secret"}
        )
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps",
            json=http_step(
                ActionType=10, ActionConfig="{}", WorkflowCredentialId=slack["WorkflowCredentialId"]
            ),
        )
        assert response.status_code == 200, response.text


class TestCredentialRules:
    async def test_matching_credential_is_accepted(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        bearer = await create_credential(api, 5, BEARER_DATA)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps",
            json=http_step(WorkflowCredentialId=bearer["WorkflowCredentialId"]),
        )
        assert response.status_code == 200, response.text
        assert response.json()["WorkflowCredentialId"] == bearer["WorkflowCredentialId"]

    async def test_credential_of_wrong_type_is_400(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        smtp = await create_credential(api)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps",
            json=http_step(WorkflowCredentialId=smtp["WorkflowCredentialId"]),
        )
        assert_error(response, 400, "WorkflowCredentialId", "Smtp", "HttpBearer")

    async def test_credential_of_another_department_is_400_as_if_missing(
        self, api: httpx.AsyncClient, client_for: ClientFactory, department_id: int
    ) -> None:
        async with client_for(department_id + 500_000, "DepartmentAdmin") as other:
            foreign = await create_credential(other, 5, BEARER_DATA)
        wid = await _workflow_id(api)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps",
            json=http_step(WorkflowCredentialId=foreign["WorkflowCredentialId"]),
        )
        assert_error(response, 400, "WorkflowCredentialId", str(foreign["WorkflowCredentialId"]), "not found")

    async def test_email_step_without_credential_is_400(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        response = await api.post(
            f"/api/v4/workflows/{wid}/steps",
            json=http_step(
                ActionType=0, ActionConfig=json.dumps({"to": "chief@example.org", "subject": "Call"})
            ),
        )
        assert_error(response, 400, "WorkflowCredentialId", "Smtp")


class TestCaps:
    async def test_free_plan_allows_five_steps(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        for order in range(5):
            assert (
                await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step(StepOrder=order))
            ).status_code == 200
        response = await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step(StepOrder=9))
        assert_error(response, 400, "Free", "5")

    async def test_paid_plan_allows_twenty_steps(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        await set_plan(db, department_id, "Paid")
        wid = await _workflow_id(api)
        for order in range(20):
            assert (
                await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step(StepOrder=order))
            ).status_code == 200
        assert_error(await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step()), 400, "Paid", "20")

    async def test_simultaneous_adds_never_pass_the_last_slot(self, api: httpx.AsyncClient) -> None:
        import asyncio

        wid = await _workflow_id(api)
        for order in range(4):
            await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step(StepOrder=order))
        responses = await asyncio.gather(
            *(api.post(f"/api/v4/workflows/{wid}/steps", json=http_step()) for _ in range(5))
        )
        assert sorted(r.status_code for r in responses) == [200, 400, 400, 400, 400]


class TestUpdateDelete:
    async def test_update_replaces_the_step(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        step = (await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step())).json()
        response = await api.put(
            f"/api/v4/workflows/{wid}/steps/{step['WorkflowStepId']}",
            json=http_step(
                StepOrder=7, OutputTemplate="{{ call.name }} updated", ConditionExpression="call.priority > 1"
            ),
        )
        assert response.status_code == 200, response.text
        updated = response.json()
        assert (updated["StepOrder"], updated["OutputTemplate"]) == (7, "{{ call.name }} updated")
        assert updated["ConditionExpression"] == "call.priority > 1"
        assert updated["UpdatedOn"] is not None

    async def test_update_validates_like_add(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        step = (await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step())).json()
        response = await api.put(
            f"/api/v4/workflows/{wid}/steps/{step['WorkflowStepId']}",
            json=http_step(OutputTemplate="{{ call.name "),
        )
        assert_error(response, 400, "OutputTemplate", "line 1")

    async def test_step_of_another_workflow_is_404(self, api: httpx.AsyncClient) -> None:
        first, second = await _workflow_id(api), await _workflow_id(api)
        step = (await api.post(f"/api/v4/workflows/{first}/steps", json=http_step())).json()
        assert_error(
            await api.put(f"/api/v4/workflows/{second}/steps/{step['WorkflowStepId']}", json=http_step()), 404
        )
        assert_error(await api.delete(f"/api/v4/workflows/{second}/steps/{step['WorkflowStepId']}"), 404)

    async def test_delete_removes_the_step(self, api: httpx.AsyncClient) -> None:
        wid = await _workflow_id(api)
        step = (await api.post(f"/api/v4/workflows/{wid}/steps", json=http_step())).json()
        assert (
            await api.delete(f"/api/v4/workflows/{wid}/steps/{step['WorkflowStepId']}")
        ).status_code == 200
        assert (await api.get(f"/api/v4/workflows/{wid}")).json()["Steps"] == []
        assert_error(await api.delete(f"/api/v4/workflows/{wid}/steps/{step['WorkflowStepId']}"), 404)
