from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.api.deps import DepartmentAdminDep, SessionDep, request_state
from services.api.paths import StepId, WorkflowId
from services.api.schemas import DeletedResult, error_responses
from services.api.workflows.etags import if_none_match_matches
from services.api.workflows.mapping import step_result, workflow_result
from services.api.workflows.schemas import (
    WorkflowInput,
    WorkflowResult,
    WorkflowStepInput,
    WorkflowStepResult,
)
from services.api.workflows.service import workflow_service

# The collection's exact path shadows nothing, so the app includes it first: FastAPI tries routes in
# order, and each route tried before the match costs every request (the list is the hottest read).
collection_router = APIRouter(prefix="/api/v4/workflows", tags=["Workflows"])
router = APIRouter(prefix="/api/v4/workflows", tags=["Workflows"])


@collection_router.get(
    "",
    response_model=list[WorkflowResult],
    summary="List workflows",
    description="The reply carries an `ETag`; a request whose `If-None-Match` holds it gets 304 "
    "without a body while the list is unchanged.",
    responses={
        **error_responses(),
        200: {"headers": {"ETag": {"description": "The list's version", "schema": {"type": "string"}}}},
        304: {"description": "The list is unchanged since the ETag in If-None-Match"},
    },
)
async def list_workflows(request: Request, admin: DepartmentAdminDep) -> Response:
    # Already the documented JSON (PascalCase, ISO times with Z), built by the database and checked
    # against it on every request (workflows/lists.py): returned as it is, so response_model only
    # documents it (test_list_matches_get, test_openapi_fuzz check it). A plainly good request is
    # answered the same way before routing (workflows/fast_list.py); this route answers the rest.
    listed = await request_state(request).lists.get(admin.department_id)
    etag = f'"{listed.tag}"'
    if if_none_match_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(listed.body, media_type="application/json", headers={"ETag": etag})


@collection_router.post(
    "",
    response_model=WorkflowResult,
    summary="Create a workflow",
    description="Capped per plan (Free 3, Paid 28 workflows); MaxRetryCount above 5 is stored as 5.",
    responses=error_responses(),
)
async def create_workflow(
    body: WorkflowInput, session: SessionDep, admin: DepartmentAdminDep
) -> WorkflowResult:
    return workflow_result(await workflow_service.create(session, admin, body))


@router.get(
    "/{workflow_id}",
    response_model=WorkflowResult,
    summary="Get a workflow with its steps",
    responses=error_responses(404),
)
async def get_workflow(
    workflow_id: WorkflowId, session: SessionDep, admin: DepartmentAdminDep
) -> WorkflowResult:
    return workflow_result(await workflow_service.get(session, admin, workflow_id))


@router.put(
    "/{workflow_id}",
    response_model=WorkflowResult,
    summary="Update a workflow",
    description="Every field as in create; TriggerEventType may change.",
    responses=error_responses(404),
)
async def update_workflow(
    workflow_id: WorkflowId, body: WorkflowInput, session: SessionDep, admin: DepartmentAdminDep
) -> WorkflowResult:
    return workflow_result(await workflow_service.update(session, admin, workflow_id, body))


@router.delete(
    "/{workflow_id}",
    response_model=DeletedResult,
    summary="Delete a workflow",
    description="Deletes its steps, runs and run logs too.",
    responses=error_responses(404),
)
async def delete_workflow(
    workflow_id: WorkflowId, session: SessionDep, admin: DepartmentAdminDep
) -> DeletedResult:
    await workflow_service.delete(session, admin, workflow_id)
    return DeletedResult(Id=workflow_id)


@router.post(
    "/{workflow_id}/steps",
    response_model=WorkflowStepResult,
    summary="Add a step",
    description="Capped per plan (Free 5, Paid 20 steps per workflow).",
    responses=error_responses(404),
)
async def add_step(
    workflow_id: WorkflowId, body: WorkflowStepInput, session: SessionDep, admin: DepartmentAdminDep
) -> WorkflowStepResult:
    return step_result(await workflow_service.add_step(session, admin, workflow_id, body))


@router.put(
    "/{workflow_id}/steps/{step_id}",
    response_model=WorkflowStepResult,
    summary="Update a step",
    responses=error_responses(404),
)
async def update_step(
    workflow_id: WorkflowId,
    step_id: StepId,
    body: WorkflowStepInput,
    session: SessionDep,
    admin: DepartmentAdminDep,
) -> WorkflowStepResult:
    return step_result(await workflow_service.update_step(session, admin, workflow_id, step_id, body))


@router.delete(
    "/{workflow_id}/steps/{step_id}",
    response_model=DeletedResult,
    summary="Delete a step",
    responses=error_responses(404),
)
async def delete_step(
    workflow_id: WorkflowId, step_id: StepId, session: SessionDep, admin: DepartmentAdminDep
) -> DeletedResult:
    await workflow_service.delete_step(session, admin, workflow_id, step_id)
    return DeletedResult(Id=step_id)
