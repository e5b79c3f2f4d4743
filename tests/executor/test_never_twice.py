"""Never twice: a redelivered run message, or two executors receiving the same run, perform each
step once; a finished run's message performs nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from services.executor.service import ExecutorService
from shared.config import Settings
from shared.enums import RunStatus
from tests.executor.conftest import Pipeline, http_step, record_processing, wait_for
from tests.peers.https_server import HttpsPeer, Reply
from wf.procs import free_port


async def test_a_message_delivered_three_times_performs_each_step_once(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    https_peer: HttpsPeer,
    department_id: int,
    processed: list[int],
) -> None:
    workflow_id, _ = await pipeline.workflow(
        api, http_step(https_peer, "/slow", order=1), http_step(https_peer, "/after", order=2)
    )
    https_peer.reply("POST", "/slow", Reply(200, delay=1.0))  # still running when the copies arrive

    run_id = await pipeline.start_run(workflow_id, department_id)
    await pipeline.redeliver(run_id, department_id, times=2)
    run = await pipeline.wait_status(run_id)

    assert run["status"] == RunStatus.Completed
    await _each_step_performed_once(
        pipeline, https_peer, processed, run_id, messages=3, paths=("/slow", "/after")
    )


async def test_copies_of_a_message_arriving_together_perform_the_step_once(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    https_peer: HttpsPeer,
    department_id: int,
    processed: list[int],
) -> None:
    # Copies fetched together are claimed by one coalesced statement: only one of them may get the run.
    workflow_id, _ = await pipeline.workflow(api, http_step(https_peer, "/together", order=1))
    run_id = await pipeline.start_run(workflow_id, department_id, publish=False)

    await pipeline.redeliver(run_id, department_id, times=4)
    run = await pipeline.wait_status(run_id)

    assert run["status"] == RunStatus.Completed
    await _each_step_performed_once(pipeline, https_peer, processed, run_id, messages=4, paths=("/together",))


async def test_a_finished_runs_message_redelivered_performs_nothing(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    https_peer: HttpsPeer,
    department_id: int,
    processed: list[int],
) -> None:
    workflow_id, _ = await pipeline.workflow(api, http_step(https_peer, "/once", order=1))
    run_id = await pipeline.start_run(workflow_id, department_id)
    finished = await pipeline.wait_status(run_id)
    await pipeline.results.outcome(run_id)

    await pipeline.redeliver(run_id, department_id)

    await _each_step_performed_once(pipeline, https_peer, processed, run_id, messages=2, paths=("/once",))
    # The outbox mark is cleared half a second after the outcome is acknowledged, whenever that is.
    settled = {k: v for k, v in finished.items() if k != "outcome_pending_since"}
    assert {k: v for k, v in (await pipeline.run(run_id)).items() if k != "outcome_pending_since"} == settled
    assert len(pipeline.results.by_run[run_id]) == 1


@pytest.fixture
async def twin_executor(settings: Settings, pipeline: Pipeline) -> AsyncIterator[ExecutorService]:
    """A second executor that receives every run message too (its own consumer group), as two
    executors do when a message is redelivered to another replica after a rebalance."""
    twin = ExecutorService(
        settings.model_copy(update={"consumer_group_prefix": f"twin-{uuid.uuid4().hex[:8]}"}),
        side_port=free_port(),
    )
    await twin.start()
    try:
        yield twin
    finally:
        await twin.stop()


async def test_two_executors_receiving_the_same_run_perform_each_step_once(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    https_peer: HttpsPeer,
    department_id: int,
    twin_executor: ExecutorService,
    processed: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    twin_processed = record_processing(twin_executor, monkeypatch)
    workflow_id, _ = await pipeline.workflow(
        api, http_step(https_peer, "/first", order=1), http_step(https_peer, "/second", order=2)
    )
    https_peer.reply("POST", "/first", Reply(200, delay=0.5))
    runs = [await pipeline.start_run(workflow_id, department_id) for _ in range(5)]

    for run_id in runs:
        assert (await pipeline.wait_status(run_id))["status"] == RunStatus.Completed

    async def both_received() -> bool:
        return all(run_id in processed and run_id in twin_processed for run_id in runs)

    await wait_for(both_received, what="both executors to receive every run")

    assert len(https_peer.requests_to("POST", "/first")) == 5
    assert len(https_peer.requests_to("POST", "/second")) == 5
    keys = [r.headers["idempotency-key"] for r in https_peer.requests]
    assert len(set(keys)) == 10
    for run_id in runs:
        assert len(await pipeline.logs(run_id)) == 2


async def _each_step_performed_once(
    pipeline: Pipeline,
    https_peer: HttpsPeer,
    processed: list[int],
    run_id: int,
    *,
    messages: int,
    paths: tuple[str, ...],
) -> None:
    """Once the executor has consumed all ``messages`` copies of the run's message: one request to
    each step's path, and one log a step."""

    async def consumed() -> bool:
        return processed.count(run_id) >= messages

    await wait_for(consumed, what=f"all {messages} copies of the run message to be consumed")
    for path in paths:
        assert len(https_peer.requests_to("POST", path)) == 1, path
    assert len(await pipeline.logs(run_id)) == len(paths)


async def test_a_run_left_by_a_crashed_executor_resumes_after_its_completed_steps(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    workflow_id, (first, second) = await pipeline.workflow(
        api, http_step(https_peer, "/first", order=1), http_step(https_peer, "/second", order=2)
    )
    # An executor claimed the run, performed step 1, recorded it, and died before step 2.
    async with pipeline.db.begin() as conn:
        run_id = (
            await conn.execute(
                text(
                    "INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, "
                    "attempt_number, is_test, input_payload, started_on, published_on, lease_owner, lease_until) "
                    "VALUES (:w, :d, 1, 0, :e, 1, false, '{}', now() - interval '20 seconds', now(), 'crashed-executor', "
                    "now() - interval '1 second') RETURNING workflow_run_id"
                ),
                {"w": workflow_id, "d": department_id, "e": str(uuid.uuid4())},
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO workflow_run_logs (workflow_run_id, workflow_step_id, attempt_number, status, "
                "action_result, started_on, completed_on, duration_ms) "
                "VALUES (:r, :s, 1, 2, 'HTTP 200', now() - interval '15 seconds', now() - interval '15 seconds', 5)"
            ),
            {"r": run_id, "s": first},
        )
        await conn.execute(
            text(
                "INSERT INTO run_step_ledger (workflow_run_id, workflow_step_id, outcome) "
                "VALUES (:r, :s, 'completed')"
            ),
            {"r": run_id, "s": first},
        )

    run = await pipeline.wait_status(run_id)  # the scheduler reaps the expired lease and releases the run

    assert run["status"] == RunStatus.Completed
    assert https_peer.requests_to("POST", "/first") == []
    assert len(https_peer.requests_to("POST", "/second")) == 1
    assert [log["workflow_step_id"] for log in await pipeline.logs(run_id)] == [first, second]
