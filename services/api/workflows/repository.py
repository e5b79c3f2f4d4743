from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shared.models import Workflow, WorkflowStep


class WorkflowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> WorkflowRepository:
        return cls(session)

    async def get(self, department_id: int, workflow_id: int, *, for_update: bool = False) -> Workflow | None:
        stmt = (
            select(Workflow)
            .where(Workflow.workflow_id == workflow_id, Workflow.department_id == department_id)
            .options(selectinload(Workflow.steps))
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list(self, department_id: int) -> Sequence[Workflow]:
        stmt = (
            select(Workflow)
            .where(Workflow.department_id == department_id)
            .options(selectinload(Workflow.steps))
            .order_by(Workflow.workflow_id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def add(self, workflow: Workflow) -> Workflow:
        self.session.add(workflow)
        await self.session.flush()
        return workflow

    async def add_step(self, step: WorkflowStep) -> WorkflowStep:
        self.session.add(step)
        await self.session.flush()
        return step
