"""Cancellation is honoured before each step and before each attempt: a cancelled run performs nothing more."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from shared.enums import RunStatus
from tests.executor.conftest import Pipeline, http_step, wait_for
from tests.peers.https_server import HttpsPeer, Reply


async def test_cancelling_a_running_run_stops_it_before_the_next_step(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    https_peer: HttpsPeer,
    department_id: int,
    processed: list[int],
) -> None:
    workflow_id, (slow, _) = await pipeline.workflow(
        api, http_step(https_peer, "/slow", order=1), http_step(https_peer, "/next", order=2)
    )
    https_peer.reply("POST", "/slow", Reply(200, delay=1.5))

    run_id = await pipeline.start_run(workflow_id, department_id)

    async def slow_step_started() -> bool:
        return bool(https_peer.requests_to("POST", "/slow"))

    await wait_for(slow_step_started, what="the first step to reach the peer")
    assert (await pipeline.run(run_id))["status"] == RunStatus.Running
    await pipeline.cancel(run_id)

    async def executor_let_go() -> bool:
        return run_id in processed

    await wait_for(executor_let_go, what="the executor to finish with the run")
    run = await pipeline.run(run_id)
    assert run["status"] == RunStatus.Cancelled
    assert https_peer.requests_to("POST", "/next") == []
    # The step in flight when the cancel came is logged as it ended; nothing after it is.
    logs = await pipeline.logs(run_id)
    assert [(log["workflow_step_id"], log["status"]) for log in logs] == [(slow, RunStatus.Completed)]
    assert (
        run_id not in pipeline.results.by_run
    )  # the executor reports no outcome for a run it did not finish


async def test_a_cancelled_retrying_run_is_not_attempted_again(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    https_peer: HttpsPeer,
    department_id: int,
    processed: list[int],
) -> None:
    workflow_id, _ = await pipeline.workflow(api, http_step(https_peer, "/busy", order=1), backoff_s=1)
    https_peer.reply("POST", "/busy", Reply(503, "busy"))

    run_id = await pipeline.start_run(workflow_id, department_id)
    retrying = await pipeline.wait_status(run_id, RunStatus.Retrying)
    await pipeline.cancel(run_id)
    # Its retry message arrives anyway once the attempt is due (e.g. produced just before the cancel).
    await asyncio.sleep((retrying["next_attempt_on"] - datetime.now(UTC)).total_seconds() + 0.3)
    await pipeline.redeliver(run_id, department_id)

    async def handled_twice() -> bool:
        return processed.count(run_id) >= 2

    await wait_for(handled_twice, what="the retry message to be consumed")
    run = await pipeline.run(run_id)
    assert (run["status"], run["attempt_number"]) == (RunStatus.Cancelled, 2)
    assert len(https_peer.requests_to("POST", "/busy")) == 1
    assert len(await pipeline.logs(run_id)) == 1
