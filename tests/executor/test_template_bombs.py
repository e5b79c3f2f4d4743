"""Template bombs fail their step cleanly, the run fails without retry, and the executor goes on."""

from __future__ import annotations

import time

import httpx
import pytest

from shared.enums import ActionType, RunStatus
from tests.executor.conftest import SAMPLE_CALL, Pipeline, http_step
from tests.peers.https_server import HttpsPeer

LOOP = "{% for i in (1..100000) %}{{ i }}{% endfor %}"
NESTED = "{% if true %}" * 60 + "deep" + "{% endif %}" * 60
HUGE = "{% for i in (1..200) %}{{ blob }}{% endfor %}"  # 200 × 2,000 characters > 256 KB


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param(LOOP, "OutputTemplate: Template exceeded the loop iteration limit of 500", id="loop"),
        pytest.param(NESTED, "OutputTemplate: Template exceeded the nesting depth limit of 50", id="nesting"),
        pytest.param(
            HUGE, "OutputTemplate: Template exceeded the output size limit of 262144 characters", id="huge"
        ),
    ],
)
async def test_template_bomb_fails_the_step_and_the_executor_keeps_working(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    https_peer: HttpsPeer,
    department_id: int,
    template: str,
    message: str,
) -> None:
    bomb_workflow, _ = await pipeline.workflow(api, name="Bomb", backoff_s=1)
    # Written directly: the API refuses a template that does not parse (the nesting bomb), and a row saved
    # before that rule, or edited in the database, must still not hurt the executor.
    await pipeline.insert_step(
        bomb_workflow,
        action_type=int(ActionType.CallApiPost),
        step_order=1,
        template=template,
        config={"url": https_peer.url("/bomb", host="127.0.0.1")},
    )
    healthy_workflow, _ = await pipeline.workflow(
        api, http_step(https_peer, "/healthy", order=1), name="Healthy"
    )

    started = time.monotonic()
    bomb_run = await pipeline.start_run(bomb_workflow, department_id, {**SAMPLE_CALL, "blob": "x" * 2000})
    healthy_run = await pipeline.start_run(healthy_workflow, department_id)

    bombed = await pipeline.wait_status(bomb_run)
    assert bombed["status"] == RunStatus.Failed
    assert bombed["attempt_number"] == 1
    assert bombed["next_attempt_on"] is None
    assert bombed["error_message"].startswith(f"Step 1 (CallApiPost) failed: {message}")
    [log] = await pipeline.logs(bomb_run)
    assert log["status"] == RunStatus.Failed
    assert log["error_message"].startswith(message)
    assert log["rendered_output"] is None
    assert https_peer.requests_to("POST", "/bomb") == []

    healthy = await pipeline.wait_status(healthy_run)
    assert healthy["status"] == RunStatus.Completed
    assert len(https_peer.requests_to("POST", "/healthy")) == 1
    assert time.monotonic() - started < 15  # a bomb costs at most the render budget, not the lease
