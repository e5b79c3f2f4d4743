from __future__ import annotations

from fastapi import APIRouter

from services.api.deps import DepartmentAdminDep, SessionDep
from services.api.health.schemas import WorkflowHealthResult
from services.api.health.service import health_service
from services.api.paths import WorkflowId
from services.api.schemas import error_responses

router = APIRouter(prefix="/api/v4/workflows", tags=["Health"])


@router.get(
    "/{workflow_id}/health",
    response_model=WorkflowHealthResult,
    summary="A workflow's health figures",
    description="Runs counted by the time they were queued; test runs are left out.",
    responses=error_responses(404),
)
async def workflow_health(
    workflow_id: WorkflowId,
    session: SessionDep,
    admin: DepartmentAdminDep,
) -> WorkflowHealthResult:
    return await health_service.for_workflow(session, admin, workflow_id)
