from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel

from services.api.deps import SessionDep, SystemAdminDep
from services.api.department.service import get_plan, set_plan
from shared.enums import Plan

router = APIRouter(prefix="/api/v4/admin", tags=["Admin"])


class DepartmentPlanInput(BaseModel):
    Plan: Literal["Free", "Paid"]


class DepartmentPlanResult(BaseModel):
    DepartmentId: int
    Plan: Literal["Free", "Paid"]


@router.put("/departments/{department_id}", response_model=DepartmentPlanResult, summary="Set a department's plan")
async def put_department(body: DepartmentPlanInput, session: SessionDep, _: SystemAdminDep,
                         department_id: int = Path(gt=0, le=2**31 - 1)) -> DepartmentPlanResult:
    await set_plan(session, department_id, Plan(body.Plan))
    return DepartmentPlanResult(DepartmentId=department_id, Plan=body.Plan)


@router.get("/departments/{department_id}", response_model=DepartmentPlanResult, summary="Read a department's plan")
async def get_department(session: SessionDep, _: SystemAdminDep,
                         department_id: int = Path(gt=0, le=2**31 - 1)) -> DepartmentPlanResult:
    return DepartmentPlanResult(DepartmentId=department_id, Plan=(await get_plan(session, department_id)).value)
