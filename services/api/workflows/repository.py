from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shared.models import Workflow, WorkflowStep


def _iso(column: str) -> str:
    """ISO 8601 UTC with milliseconds and Z, exactly as services.api.schemas.iso_z writes it."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


LIST_JSON = text(
    f"""
    SELECT coalesce(json_agg(json_build_object(
        'WorkflowId', w.workflow_id, 'DepartmentId', w.department_id, 'Name', w.name,
        'Description', w.description, 'TriggerEventType', w.trigger_event_type, 'IsEnabled', w.is_enabled,
        'MaxRetryCount', w.max_retry_count, 'RetryBackoffBaseSeconds', w.retry_backoff_base_seconds,
        'CreatedOn', {_iso("w.created_on")}, 'UpdatedOn', {_iso("w.updated_on")},
        'Steps', coalesce((
            SELECT json_agg(json_build_object(
                'WorkflowStepId', s.workflow_step_id, 'WorkflowId', s.workflow_id, 'ActionType', s.action_type,
                'StepOrder', s.step_order, 'OutputTemplate', s.output_template, 'ActionConfig', s.action_config,
                'WorkflowCredentialId', s.workflow_credential_id, 'IsEnabled', s.is_enabled,
                'ConditionExpression', s.condition_expression,
                'CreatedOn', {_iso("s.created_on")}, 'UpdatedOn', {_iso("s.updated_on")}
            ) ORDER BY s.step_order, s.workflow_step_id)
            FROM workflow_steps s WHERE s.workflow_id = w.workflow_id), '[]'::json)
    ) ORDER BY w.workflow_id), '[]'::json)::text
    FROM workflows w WHERE w.department_id = :department_id
    """
)


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

    async def list_json(self, department_id: int) -> str:
        """The department's workflows as the API's JSON array, built by PostgreSQL in one query.

        The list is the API's hottest read (clients poll it); building it in the database skips ORM
        instances and a second validation of every field, the bulk of its cost in Python.
        """
        return str((await self.session.execute(LIST_JSON, {"department_id": department_id})).scalar_one())

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
