"""One run through the whole pipeline: an event on the events topic, steps in StepOrder, disabled
steps left out, conditions evaluated, a log row per step, the outcome on the results topic."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from services.dispatcher.service import DispatcherService
from shared.enums import RunStatus
from tests.executor.conftest import SAMPLE_CALL, Pipeline, http_step, wait_for
from tests.peers.https_server import HttpsPeer, Reply

LONG_LINE = "0123456789" * 10


async def test_steps_run_in_step_order_with_disabled_and_conditional_steps(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    https_peer: HttpsPeer,
    department_id: int,
    services: dict[str, object],
) -> None:
    # Created out of order: StepOrder decides, not creation.
    workflow_id, (fourth, first, disabled, skipped, fifth) = await pipeline.workflow(
        api,
        http_step(https_peer, "/fourth", order=4, method=4, template="{{ call.address }}"),
        http_step(
            https_peer,
            "/first",
            order=1,
            template='{"call": "{{ call.name }}", "dept": "{{ department.name }}"}',
            config={"headers": {"X-Call-Id": "{{ call.id }}"}},
        ),
        http_step(https_peer, "/disabled", order=2, IsEnabled=False),
        http_step(https_peer, "/skipped", order=3, ConditionExpression="call.priority > 5"),
        http_step(
            https_peer,
            "/fifth",
            order=5,
            ConditionExpression="call.priority >= 3",
            template=f"{{% for i in (1..50) %}}{LONG_LINE}{{% endfor %}}",
        ),
    )
    event_id = str(uuid.uuid4())
    dispatcher = services["dispatcher"]
    assert isinstance(dispatcher, DispatcherService)

    async def dispatcher_knows_workflow() -> bool:
        return workflow_id in dispatcher.index.match(department_id, 0)

    await wait_for(dispatcher_knows_workflow, what="the dispatcher's index to pick up the workflow")
    await pipeline.producer.send_and_wait(
        pipeline.settings.topic_events,
        key=str(department_id).encode(),
        value=orjson.dumps(
            {
                "EventId": event_id,
                "DepartmentId": department_id,
                "EventType": 0,
                "OccurredOn": "2026-11-29T12:00:00Z",
                "Payload": SAMPLE_CALL,
            }
        ),
    )

    async def run_of_event() -> int | None:
        async with pipeline.db.connect() as conn:
            return (
                await conn.execute(
                    text(
                        "SELECT workflow_run_id FROM workflow_runs WHERE workflow_id = :w AND event_id = :e"
                    ),
                    {"w": workflow_id, "e": event_id},
                )
            ).scalar()

    run_id = await wait_for(run_of_event, what="the dispatcher to create the run")
    run = await pipeline.wait_status(run_id)

    assert run["status"] == RunStatus.Completed
    assert run["error_message"] is None
    assert run["attempt_number"] == 1
    assert [r.path for r in https_peer.requests] == ["/first", "/fourth", "/fifth"]
    first_request, fourth_request, fifth_request = https_peer.requests
    assert first_request.json() == {"call": "Structure Fire", "dept": "Springfield FD"}
    assert first_request.headers["x-call-id"] == "1001"  # ActionConfig values are rendered too
    assert first_request.headers["idempotency-key"] == f"wf-run-{run_id}-step-{first}"
    assert fourth_request.method == "PUT"
    assert fourth_request.body == b"1 Main St"
    assert len(fifth_request.body) == 5000

    logs = await pipeline.logs(run_id)
    assert [(log["workflow_step_id"], log["status"]) for log in logs] == [
        (first, RunStatus.Completed),
        (skipped, RunStatus.Skipped),
        (fourth, RunStatus.Completed),
        (fifth, RunStatus.Completed),
    ]
    assert disabled not in {log["workflow_step_id"] for log in logs}
    for log in logs:
        assert log["attempt_number"] == 1
        assert log["error_message"] is None
        assert log["started_on"] <= log["completed_on"]
        assert log["duration_ms"] is not None
        assert log["duration_ms"] >= 0
        assert log["action_result"]
    by_step = {log["workflow_step_id"]: log for log in logs}
    assert by_step[first]["rendered_output"] == '{"call": "Structure Fire", "dept": "Springfield FD"}'
    assert by_step[first]["action_result"].startswith("HTTP 200")
    assert by_step[skipped]["action_result"] == "Step skipped: condition evaluated to 'false'"
    assert by_step[skipped]["rendered_output"] == "call.priority > 5"
    assert by_step[fifth]["rendered_output"] == (LONG_LINE * 40)  # the log keeps the first 4,000 characters

    outcome = await pipeline.results.outcome(run_id)
    assert outcome["Status"] == RunStatus.Completed
    assert (outcome["WorkflowId"], outcome["DepartmentId"], outcome["AttemptNumber"]) == (
        workflow_id,
        department_id,
        1,
    )
    assert outcome["ErrorMessage"] is None
    assert outcome["CompletedOn"] is not None


async def test_a_failed_step_does_not_stop_the_next_and_the_run_says_which_failed(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    workflow_id, (broken, notify) = await pipeline.workflow(
        api, http_step(https_peer, "/gone", order=1), http_step(https_peer, "/notify", order=2)
    )
    https_peer.reply("POST", "/gone", Reply(404, {"error": "no such incident"}))

    run_id = await pipeline.start_run(workflow_id, department_id)
    run = await pipeline.wait_status(run_id)

    assert run["status"] == RunStatus.Failed
    assert run["error_message"].startswith("Step 1 (CallApiPost) failed: ")
    assert "404" in run["error_message"]
    assert len(https_peer.requests_to("POST", "/notify")) == 1
    logs = await pipeline.logs(run_id)
    assert [(log["workflow_step_id"], log["status"]) for log in logs] == [
        (broken, RunStatus.Failed),
        (notify, RunStatus.Completed),
    ]
    assert "404" in logs[0]["error_message"]
    outcome = await pipeline.results.outcome(run_id)
    assert outcome["Status"] == RunStatus.Failed
    assert outcome["ErrorMessage"] == run["error_message"]


async def test_a_reply_containing_nul_is_logged_and_the_step_is_not_repeated(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    # PostgreSQL text cannot hold NUL: unless the executor replaces it, the log row of a step that was
    # performed cannot be written, and the run is taken up and the step performed again, forever.
    workflow_id, _ = await pipeline.workflow(api, http_step(https_peer, "/nul", order=1))
    https_peer.reply("POST", "/nul", Reply(200, b"accepted\x00queued", {"Content-Type": "text/plain"}))

    run_id = await pipeline.start_run(workflow_id, department_id)
    run = await pipeline.wait_status(run_id)

    assert run["status"] == RunStatus.Completed
    (log,) = await pipeline.logs(run_id)
    assert log["action_result"] == "HTTP 200: accepted\ufffdqueued"
    assert len(https_peer.requests_to("POST", "/nul")) == 1


async def test_the_last_steps_record_is_written_by_the_settling_statement(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    https_peer: HttpsPeer,
    department_id: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # At low rates every statement is a commit of its own (one fsync): the last step's log row and
    # ledger entry go with the settlement, so a one-step run costs claim + settle, not three.
    assert pipeline.executor.executor is not None
    store = pipeline.executor.executor.store
    statements: list[tuple[str, set[int]]] = []  # each statement's name and the runs it wrote for
    for coalescer in (store._records, store._settlements):
        run_batch = coalescer._run_batch

        async def counted(
            batch: Sequence[Any], run_batch: Any = run_batch, name: str = coalescer.name
        ) -> Any:
            statements.append((name, {request.run_id for request in batch}))
            return await run_batch(batch)

        monkeypatch.setattr(coalescer, "_run_batch", counted)
    workflow_id, (first, last) = await pipeline.workflow(
        api, http_step(https_peer, "/first", order=1), http_step(https_peer, "/last", order=2)
    )

    run_id = await pipeline.start_run(workflow_id, department_id)
    run = await pipeline.wait_status(run_id)

    assert run["status"] == RunStatus.Completed
    # The first step's record, then the last's with the settlement (the shared executor may write
    # other tests' runs meanwhile: only this run's statements count).
    assert [name for name, runs in statements if run_id in runs] == ["record_step", "settle"]
    logs = await pipeline.logs(run_id)
    assert [(log["workflow_step_id"], log["status"]) for log in logs] == [
        (first, RunStatus.Completed),
        (last, RunStatus.Completed),
    ]
    async with pipeline.db.connect() as conn:
        ledger = (
            await conn.execute(
                text(
                    "SELECT workflow_step_id, outcome FROM run_step_ledger WHERE workflow_run_id = :r "
                    "ORDER BY workflow_step_id"
                ),
                {"r": run_id},
            )
        ).all()
    assert sorted(ledger) == sorted([(first, "completed"), (last, "completed")])
    # Redelivered, the finished run performs nothing again.
    await pipeline.redeliver(run_id, department_id)
    await asyncio.sleep(1)
    assert len(https_peer.requests_to("POST", "/last")) == 1


async def test_a_run_cancelled_during_its_last_step_still_logs_the_step(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    # The settlement no longer applies (the run is not this executor's any more), but the step was
    # performed: its log row and ledger entry are written all the same.
    workflow_id, (step,) = await pipeline.workflow(api, http_step(https_peer, "/slow", order=1))
    https_peer.reply("POST", "/slow", Reply(200, {"ok": True}, delay=1.0))

    run_id = await pipeline.start_run(workflow_id, department_id)

    async def requested() -> bool:
        return len(https_peer.requests_to("POST", "/slow")) == 1

    await wait_for(requested, what="the step's request")
    await pipeline.cancel(run_id)

    async def logged() -> list[Any] | None:
        return (await pipeline.logs(run_id)) or None

    (log,) = await wait_for(logged, what="the cancelled run's step log")
    assert (log["workflow_step_id"], log["status"]) == (step, RunStatus.Completed)
    assert (await pipeline.run(run_id))["status"] == RunStatus.Cancelled
