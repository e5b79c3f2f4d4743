from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import DepartmentAdminDep, SessionDep
from services.api.workflows.mapping import step_result, workflow_result
from services.api.workflows.schemas import WorkflowInput, WorkflowResult, WorkflowStepInput, WorkflowStepResult
from services.api.workflows.service import workflow_service

router = APIRouter(prefix="/api/v4/workflows", tags=["Workflows"])


@router.get("", response_model=list[WorkflowResult], summary="List workflows")
async def list_workflows(session: SessionDep, admin: DepartmentAdminDep) -> list[WorkflowResult]:
    return [workflow_result(w) for w in await workflow_service.list(session, admin)]


@router.post("", response_model=WorkflowResult, summary="Create a workflow")
async def create_workflow(body: WorkflowInput, session: SessionDep, admin: DepartmentAdminDep) -> WorkflowResult:
    return workflow_result(await workflow_service.create(session, admin, body))


@router.get("/{workflow_id}", response_model=WorkflowResult, summary="Get a workflow with its steps")
async def get_workflow(workflow_id: int, session: SessionDep, admin: DepartmentAdminDep) -> WorkflowResult:
    return workflow_result(await workflow_service.get(session, admin, workflow_id))


@router.post("/{workflow_id}/steps", response_model=WorkflowStepResult, summary="Add a step")
async def add_step(workflow_id: int, body: WorkflowStepInput, session: SessionDep,
                   admin: DepartmentAdminDep) -> WorkflowStepResult:
    return step_result(await workflow_service.add_step(session, admin, workflow_id, body))
