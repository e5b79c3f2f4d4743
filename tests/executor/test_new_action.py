"""Adding an action is one provider module and one registry entry: a minimal action defined here goes
through the API's step validation, the template catalogue's variables and the executor."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import pytest

from shared.actions.config_fields import OneLineText, whole_number
from shared.actions.outcomes import ActionResult, permanent
from shared.actions.registry import ACTION_SPECS
from shared.actions.spec import ActionConfig, ActionHost, ActionSpec, StepRun
from shared.enums import ActionType, RunStatus
from tests.api.conftest import assert_error
from tests.executor.conftest import Pipeline

# Every ActionType value is taken and its values are the public contract, so the test's action borrows
# one for its lifetime: the registry is the only place that says what a value means.
BORROWED = ActionType.UploadFileDropbox


class EchoConfig(ActionConfig):
    greeting: OneLineText
    times: Annotated[int, whole_number(1, 3)] = 1


performed: list[tuple[str, int, str]] = []


async def echo(host: ActionHost, step: StepRun, config: EchoConfig, credential: None) -> ActionResult:
    if config.greeting == "fail":
        raise permanent("asked to fail")
    performed.append((config.greeting, config.times, step.content))
    return ActionResult(f"echoed '{config.greeting}' x{config.times}")


@pytest.fixture
def echo_action(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        ACTION_SPECS, BORROWED, ActionSpec(BORROWED, EchoConfig, frozenset({None}), None, echo)
    )
    performed.clear()


def echo_step(config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "ActionType": int(BORROWED),
        "StepOrder": 1,
        "OutputTemplate": "{{ call.address }}",
        "ActionConfig": config,
        **extra,
    }


async def test_the_api_checks_a_new_actions_config_with_its_model(
    api: httpx.AsyncClient, pipeline: Pipeline, echo_action: None
) -> None:
    workflow_id, _ = await pipeline.workflow(api)
    path = f"/api/v4/workflows/{workflow_id}/steps"

    def body(config: dict[str, Any]) -> dict[str, Any]:
        return {**echo_step(config), "ActionConfig": json.dumps(config)}

    assert_error(
        await api.post(path, json=body({"times": "9"})), 400, "ActionConfig.times", "between 1 and 3"
    )
    assert_error(await api.post(path, json=body({"times": 2})), 400, "ActionConfig.greeting", "is required")
    assert_error(
        await api.post(path, json=body({"greeting": "hi", "targetPath": "/"})),
        400,
        "ActionConfig.targetPath",
        "allowed: greeting, times",
    )
    # A templated value is checked once rendered.
    saved = await api.post(
        path, json=body({"greeting": "Hello {{ call.name }}", "TIMES": "{{ call.priority }}"})
    )
    assert saved.status_code == 200, saved.text


async def test_the_executor_performs_a_new_action_with_its_typed_config(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, echo_action: None
) -> None:
    workflow_id, _ = await pipeline.workflow(
        api, echo_step({"greeting": "Hello {{ call.name }}", "times": "{{ call.priority | minus: 1 }}"})
    )

    run_id = await pipeline.start_run(workflow_id, department_id)
    run = await pipeline.wait_status(run_id)

    assert run["status"] == RunStatus.Completed, run["error_message"]
    assert performed == [("Hello Structure Fire", 2, "1 Main St")]
    (log,) = await pipeline.logs(run_id)
    assert log["action_result"] == "echoed 'Hello Structure Fire' x2"


async def test_a_rendered_value_the_new_model_refuses_fails_the_step(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, echo_action: None
) -> None:
    workflow_id, _ = await pipeline.workflow(
        api, echo_step({"greeting": "hi", "times": "{{ call.priority | plus: 5 }}"})
    )

    run_id = await pipeline.start_run(workflow_id, department_id)
    run = await pipeline.wait_status(run_id)

    assert run["status"] == RunStatus.Failed
    assert "ActionConfig.times: must be between 1 and 3" in run["error_message"]
    assert performed == []
