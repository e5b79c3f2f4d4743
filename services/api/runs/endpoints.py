from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query

from services.api.deps import DepartmentAdminDep, SessionDep, StateDep
from services.api.errors import ServiceUnavailable
from services.api.paths import RunId, WorkflowId
from services.api.runs.mapping import log_result, result_with_logs, run_result
from services.api.runs.outcomes import publish_outcomes
from services.api.runs.schemas import (
    ClearResult,
    WorkflowRunLogResult,
    WorkflowRunResult,
    WorkflowTestInput,
    WorkflowTestRunResult,
)
from services.api.runs.service import run_service
from services.api.schemas import INT32_MAX, error_responses
from shared.logging import get_logger
from shared.messages import TEST_WORKFLOW_HEADER
from shared.tracing import kafka_headers

log = get_logger(__name__)

router = APIRouter(prefix="/api/v4/workflows", tags=["Runs"])

PageNumber = Annotated[int, Query(ge=1, le=INT32_MAX, description="Page number, from 1")]
PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=100, description="Runs per page, 1-100")]


@router.get(
    "/runs",
    response_model=list[WorkflowRunResult],
    summary="List the department's runs, newest first",
    responses=error_responses(),
)
async def list_runs(
    session: SessionDep, admin: DepartmentAdminDep, page: PageNumber = 1, page_size: PageSize = 20
) -> list[WorkflowRunResult]:
    runs = await run_service.page(session, admin, workflow_id=None, page=page, page_size=page_size)
    return [run_result(r) for r in runs]


@router.get(
    "/runs/pending",
    response_model=list[WorkflowRunResult],
    summary="List Pending, Running and Retrying runs, newest first",
    responses=error_responses(),
)
async def list_pending_runs(session: SessionDep, admin: DepartmentAdminDep) -> list[WorkflowRunResult]:
    return [run_result(r) for r in await run_service.pending(session, admin)]


@router.post(
    "/runs/clear",
    response_model=ClearResult,
    summary="Cancel every open run of the department",
    responses=error_responses(),
)
async def clear_runs(session: SessionDep, state: StateDep, admin: DepartmentAdminDep) -> ClearResult:
    cancelled = await run_service.clear(session, admin)
    await session.commit()
    await publish_outcomes(state, cancelled)
    return ClearResult(Cancelled=len(cancelled))


@router.get(
    "/runs/{run_id}/logs",
    response_model=list[WorkflowRunLogResult],
    summary="A run's step logs",
    responses=error_responses(404),
)
async def run_logs(
    run_id: RunId, session: SessionDep, admin: DepartmentAdminDep
) -> list[WorkflowRunLogResult]:
    return [log_result(entry) for entry in await run_service.logs(session, admin, run_id)]


@router.post(
    "/runs/{run_id}/cancel",
    response_model=WorkflowRunResult,
    summary="Cancel a run",
    description="Pending, Running and Retrying runs only; a finished run gives 409. A running run "
    "stops before its next step.",
    responses=error_responses(404, 409),
)
async def cancel_run(
    run_id: RunId, session: SessionDep, state: StateDep, admin: DepartmentAdminDep
) -> WorkflowRunResult:
    run = await run_service.cancel(session, admin, run_id)
    await session.commit()
    await publish_outcomes(state, [run])
    return run_result(run)


@router.get(
    "/{workflow_id}/runs",
    response_model=list[WorkflowRunResult],
    summary="List a workflow's runs, newest first",
    responses=error_responses(404),
)
async def list_workflow_runs(
    workflow_id: WorkflowId,
    session: SessionDep,
    admin: DepartmentAdminDep,
    page: PageNumber = 1,
    page_size: PageSize = 20,
) -> list[WorkflowRunResult]:
    runs = await run_service.page(session, admin, workflow_id=workflow_id, page=page, page_size=page_size)
    return [run_result(r) for r in runs]


@router.post(
    "/{workflow_id}/test",
    response_model=WorkflowTestRunResult,
    summary="Test a workflow",
    description="Sends a test event for the workflow through the same pipeline as a real event (the "
    "dispatcher creates the run, IsTest: true, also when the workflow is disabled; the executor performs "
    "it), with the event type's sample payload unless EventPayloadJson is given, waits up to 30 s for a "
    "final state and returns the run with its step logs. A test run counts against the department's "
    "plan limits like any run: past the per-minute limit it is deferred to the next minute (the answer "
    "is then the Pending run, which runs when its window opens); once the daily run limit is spent the "
    "test is refused with 429 RunLimitReached, whose message names the limit. Test runs are left out "
    "of health figures.",
    responses=error_responses(404, 429, 503),
)
async def run_workflow_test(
    workflow_id: WorkflowId,
    session: SessionDep,
    state: StateDep,
    admin: DepartmentAdminDep,
    body: WorkflowTestInput | None = None,
) -> WorkflowTestRunResult:
    test = await run_service.start_test(session, admin, workflow_id, body)
    try:
        await state.producer.send_and_wait(
            state.settings.topic_events,
            value=orjson.dumps(test.envelope()),
            key=str(test.department_id).encode(),
            headers=[(TEST_WORKFLOW_HEADER, str(test.workflow_id).encode()), *kafka_headers()],
        )
    except Exception as exc:
        raise ServiceUnavailable(
            f"The test event could not be queued ({type(exc).__name__}); try again"
        ) from exc
    final, logs = await run_service.wait_for_test_run(
        state.sessionmaker, admin, test, state.settings.test_wait_s
    )
    return result_with_logs(final, logs)
