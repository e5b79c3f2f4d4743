from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from services.api.department.service import get_plan, set_plan
from services.api.deps import SessionDep, SystemAdminDep
from services.api.paths import DepartmentId
from services.api.schemas import InputSchema, error_responses
from shared.enums import Plan

router = APIRouter(prefix="/api/v4/admin", tags=["Admin"])


class DepartmentPlanInput(InputSchema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"Plan": "Paid"}]})

    Plan: Literal["Free", "Paid"]


class DepartmentPlanResult(BaseModel):
    DepartmentId: int
    Plan: Literal["Free", "Paid"]


@router.put(
    "/departments/{department_id}",
    response_model=DepartmentPlanResult,
    summary="Set a department's plan",
    description="Needs the SystemAdmin role.",
    responses=error_responses(),
)
async def put_department(
    body: DepartmentPlanInput, session: SessionDep, _: SystemAdminDep, department_id: DepartmentId
) -> DepartmentPlanResult:
    await set_plan(session, department_id, Plan(body.Plan))
    return DepartmentPlanResult(DepartmentId=department_id, Plan=body.Plan)


@router.get(
    "/departments/{department_id}",
    response_model=DepartmentPlanResult,
    summary="Read a department's plan",
    description="Needs the SystemAdmin role. Unknown departments are Free.",
    responses=error_responses(),
)
async def get_department(
    session: SessionDep, _: SystemAdminDep, department_id: DepartmentId
) -> DepartmentPlanResult:
    return DepartmentPlanResult(
        DepartmentId=department_id, Plan=(await get_plan(session, department_id)).value
    )
