from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import OPEN_RUN_STATUSES
from shared.models import WorkflowRun, WorkflowRunLog
from shared.runs import cancel as runs_cancel

_OPEN = [int(s) for s in OPEN_RUN_STATUSES]


class RunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, department_id: int, *, workflow_id: int | None, offset: int, limit: int
    ) -> Sequence[WorkflowRun]:
        """Newest first: by id for a department; for one workflow by queue time, then id (practically
        the same order, as runs are numbered when queued), which its index (workflow_id, queued_on) serves."""
        stmt = select(WorkflowRun).where(WorkflowRun.department_id == department_id)
        if workflow_id is not None:
            stmt = stmt.where(WorkflowRun.workflow_id == workflow_id).order_by(
                WorkflowRun.queued_on.desc(), WorkflowRun.workflow_run_id.desc()
            )
        else:
            stmt = stmt.order_by(WorkflowRun.workflow_run_id.desc())
        stmt = stmt.offset(offset).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def open_runs(self, department_id: int) -> Sequence[WorkflowRun]:
        stmt = (
            select(WorkflowRun)
            .where(WorkflowRun.department_id == department_id, WorkflowRun.status.in_(_OPEN))
            .order_by(WorkflowRun.workflow_run_id.desc())
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def get(self, department_id: int, run_id: int, *, for_update: bool = False) -> WorkflowRun | None:
        stmt = select(WorkflowRun).where(
            WorkflowRun.workflow_run_id == run_id, WorkflowRun.department_id == department_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def logs(self, run_id: int) -> Sequence[WorkflowRunLog]:
        stmt = (
            select(WorkflowRunLog)
            .where(WorkflowRunLog.workflow_run_id == run_id)
            .order_by(WorkflowRunLog.started_on, WorkflowRunLog.workflow_run_log_id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def cancel(self, run: WorkflowRun) -> WorkflowRun:
        return await runs_cancel.cancel(self.session, run)

    async def cancel_open(self, department_id: int) -> Sequence[WorkflowRun]:
        """Cancel every open run of the department; returns the runs it cancelled."""
        return await runs_cancel.cancel_open(self.session, department_id)
