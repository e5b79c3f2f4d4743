from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shared.models import Workflow, WorkflowStep


def _iso(column: str) -> str:
    """ISO 8601 UTC with milliseconds and Z, exactly as services.api.schemas.iso_z writes it."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


# row_to_json over aliased columns (one tuple descriptor per query) costs PostgreSQL less than
# json_build_object with its per-call argument handling, and writes no spaces.
def _list_json(department: str) -> str:
    return f"""
    SELECT coalesce(json_agg(w ORDER BY w."WorkflowId"), '[]')::text FROM (
        SELECT w.workflow_id AS "WorkflowId", w.department_id AS "DepartmentId", w.name AS "Name",
            w.description AS "Description", w.trigger_event_type AS "TriggerEventType",
            w.is_enabled AS "IsEnabled", w.max_retry_count AS "MaxRetryCount",
            w.retry_backoff_base_seconds AS "RetryBackoffBaseSeconds",
            {_iso("w.created_on")} AS "CreatedOn", {_iso("w.updated_on")} AS "UpdatedOn",
            coalesce((
                SELECT json_agg(s ORDER BY s."StepOrder", s."WorkflowStepId") FROM (
                    SELECT s.workflow_step_id AS "WorkflowStepId", s.workflow_id AS "WorkflowId",
                        s.action_type AS "ActionType", s.step_order AS "StepOrder",
                        s.output_template AS "OutputTemplate", s.action_config AS "ActionConfig",
                        s.workflow_credential_id AS "WorkflowCredentialId", s.is_enabled AS "IsEnabled",
                        s.condition_expression AS "ConditionExpression",
                        {_iso("s.created_on")} AS "CreatedOn", {_iso("s.updated_on")} AS "UpdatedOn"
                    FROM workflow_steps s WHERE s.workflow_id = w.workflow_id
                ) s
            ), '[]') AS "Steps"
        FROM workflows w WHERE w.department_id = {department}
    ) w
"""


# The list's validator: every row the list is built from, by id and xmin. Any INSERT or UPDATE of a
# workflow or step writes a new row version with a new xmin, and a DELETE drops its id, so the tag
# changes with every field of the list (names, steps, timestamps alike); row locks (FOR UPDATE) set
# xmax, not xmin, and change nothing. It reads the same index entries as the list, without building
# JSON or formatting times.
_LIST_TAG = """
    SELECT md5(d.department_id || ':' || coalesce(string_agg(
        w.workflow_id || '.' || w.xmin::text || coalesce(s.tags, ''), ',' ORDER BY w.workflow_id), ''))
    FROM workflows w LEFT JOIN LATERAL (
        SELECT string_agg(' ' || s.workflow_step_id || '.' || s.xmin::text, '' ORDER BY s.workflow_step_id)
            AS tags
        FROM workflow_steps s WHERE s.workflow_id = w.workflow_id
    ) s ON true
    WHERE w.department_id = d.department_id
"""

# One statement for a batch of departments: each one's tag, and its list only where the tag differs
# from the one the caller already holds (the CASE evaluates the list's subquery only then). Tag and
# list come from the same snapshot, so a list is always stored under its own tag.
LISTS_IF_CHANGED = f"""
    SELECT d.department_id, t.tag,
        CASE WHEN t.tag IS DISTINCT FROM d.known THEN ({_list_json("d.department_id")}) END
    FROM unnest(%(departments)s::int[], %(known)s::text[]) AS d(department_id, known)
    CROSS JOIN LATERAL ({_LIST_TAG}) AS t(tag)
"""


class WorkflowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
