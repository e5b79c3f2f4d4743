"""Cancel (API): an open run becomes Cancelled, final, with its outcome marked pending in the outbox
(shared/runs/outbox.py). Through the ORM, as the API's other run queries: one row, or one department's
open runs, at a user's request (not a hot path)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import OPEN_RUN_STATUSES, RunStatus
from shared.models import WorkflowRun

_OPEN = [int(s) for s in OPEN_RUN_STATUSES]


async def cancel(session: AsyncSession, run: WorkflowRun) -> WorkflowRun:
    """Cancel one run the caller loaded FOR UPDATE and found open."""
    run.status = int(RunStatus.Cancelled)
    run.completed_on = func.now()
    run.outcome_pending_since = func.now()
    run.lease_owner = None
    run.lease_until = None
    await session.flush()
    await session.refresh(run, ["completed_on"])
    return run


async def cancel_open(session: AsyncSession, department_id: int) -> Sequence[WorkflowRun]:
    """Cancel every open run of the department; returns the runs it cancelled."""
    stmt = (
        update(WorkflowRun)
        .where(WorkflowRun.department_id == department_id, WorkflowRun.status.in_(_OPEN))
        .values(
            status=int(RunStatus.Cancelled),
            completed_on=func.now(),
            outcome_pending_since=func.now(),
            lease_owner=None,
            lease_until=None,
        )
        .returning(WorkflowRun)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalars().all()
