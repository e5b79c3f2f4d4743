from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shared.models import Workflow, WorkflowStep


class WorkflowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> WorkflowRepository:
        return cls(session)

    async def get(
        self, department_id: int, workflow_id: int, *, for_update: bool = False, with_steps: bool = True
    ) -> Workflow | None:
        stmt = select(Workflow).where(
            Workflow.workflow_id == workflow_id, Workflow.department_id == department_id
        )
        if with_steps:
            stmt = stmt.options(selectinload(Workflow.steps))
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def exists(self, department_id: int, workflow_id: int) -> bool:
        stmt = select(Workflow.workflow_id).where(
            Workflow.workflow_id == workflow_id, Workflow.department_id == department_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def list(self, department_id: int) -> Sequence[Workflow]:
        stmt = (
            select(Workflow)
            .where(Workflow.department_id == department_id)
            .options(selectinload(Workflow.steps))
            .order_by(Workflow.workflow_id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def count(self, department_id: int) -> int:
        stmt = select(func.count()).select_from(Workflow).where(Workflow.department_id == department_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def add(self, workflow: Workflow) -> Workflow:
        self.session.add(workflow)
        await self.session.flush()
        return workflow

    async def delete(self, workflow_id: int) -> None:
        """Steps, runs and run logs go with it (ON DELETE CASCADE), in the caller's transaction."""
        await self.session.execute(delete(Workflow).where(Workflow.workflow_id == workflow_id))

    async def count_steps(self, workflow_id: int) -> int:
        stmt = select(func.count()).select_from(WorkflowStep).where(WorkflowStep.workflow_id == workflow_id)
        return int((await self.session.execute(stmt)).scalar_one())

    async def get_step(self, workflow_id: int, step_id: int) -> WorkflowStep | None:
        stmt = select(WorkflowStep).where(
            WorkflowStep.workflow_step_id == step_id, WorkflowStep.workflow_id == workflow_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add_step(self, step: WorkflowStep) -> WorkflowStep:
        self.session.add(step)
        await self.session.flush()
        return step

    async def delete_step(self, step_id: int) -> None:
        await self.session.execute(delete(WorkflowStep).where(WorkflowStep.workflow_step_id == step_id))
