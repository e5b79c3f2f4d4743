from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.department.service import lock_department
from services.api.errors import NotFound, PlanLimitReached
from services.api.workflows.repository import WorkflowRepository
from services.api.workflows.schemas import WorkflowInput, WorkflowStepInput
from services.api.workflows.step_rules import check_step, normalised_condition
from shared.auth import Principal
from shared.models import Workflow, WorkflowStep
from shared.plans import MAX_RETRY_CEILING, limits_for


def _not_found(workflow_id: int) -> NotFound:
    return NotFound(f"Workflow {workflow_id} was not found")


def _apply(workflow: Workflow, data: WorkflowInput) -> None:
    workflow.name = data.Name
    workflow.description = data.Description
    workflow.trigger_event_type = data.TriggerEventType
    workflow.is_enabled = data.IsEnabled
    workflow.max_retry_count = min(data.MaxRetryCount, MAX_RETRY_CEILING)
    workflow.retry_backoff_base_seconds = data.RetryBackoffBaseSeconds


def _apply_step(step: WorkflowStep, data: WorkflowStepInput) -> None:
    step.action_type = data.ActionType
    step.step_order = data.StepOrder
    step.output_template = data.OutputTemplate
    step.action_config = data.ActionConfig
    step.workflow_credential_id = data.WorkflowCredentialId
    step.is_enabled = data.IsEnabled
    step.condition_expression = normalised_condition(data.ConditionExpression)


class WorkflowService:
    async def get(self, session: AsyncSession, principal: Principal, workflow_id: int) -> Workflow:
        workflow = await WorkflowRepository(session).get(principal.department_id, workflow_id)
        if workflow is None:
            raise _not_found(workflow_id)
        return workflow

    async def create(self, session: AsyncSession, principal: Principal, data: WorkflowInput) -> Workflow:
        repo = WorkflowRepository(session)
        plan = await lock_department(session, principal.department_id)
        cap = limits_for(plan).workflows
        if await repo.count(principal.department_id) >= cap:
            raise PlanLimitReached(
                f"Workflow limit reached: the {plan.value} plan allows {cap} workflows per department"
            )
        workflow = Workflow(department_id=principal.department_id, created_by=principal.user_id)
        _apply(workflow, data)
        workflow = await repo.add(workflow)
        await session.refresh(workflow, ["steps", "created_on", "updated_on"])
        return workflow

    async def update(
        self, session: AsyncSession, principal: Principal, workflow_id: int, data: WorkflowInput
    ) -> Workflow:
        repo = WorkflowRepository(session)
        workflow = await repo.get(principal.department_id, workflow_id, for_update=True)
        if workflow is None:
            raise _not_found(workflow_id)
        _apply(workflow, data)
        workflow.updated_on = func.now()  # a PUT is an update even if nothing changed
        await session.flush()
        await session.refresh(workflow, ["updated_on"])
        return workflow

    async def delete(self, session: AsyncSession, principal: Principal, workflow_id: int) -> None:
        repo = WorkflowRepository(session)
        # The row lock makes a concurrent run insert (its foreign-key check) wait for this transaction
        # and then fail, instead of leaving a run behind for a deleted workflow.
        if await repo.get(principal.department_id, workflow_id, for_update=True, with_steps=False) is None:
            raise _not_found(workflow_id)
        await repo.delete(workflow_id)

    async def add_step(
        self, session: AsyncSession, principal: Principal, workflow_id: int, data: WorkflowStepInput
    ) -> WorkflowStep:
        repo = WorkflowRepository(session)
        plan = await lock_department(session, principal.department_id)
        workflow = await repo.get(principal.department_id, workflow_id, for_update=True, with_steps=False)
        if workflow is None:
            raise _not_found(workflow_id)
        await check_step(session, principal.department_id, data)
        cap = limits_for(plan).steps_per_workflow
        if await repo.count_steps(workflow_id) >= cap:
            raise PlanLimitReached(
                f"Step limit reached: the {plan.value} plan allows {cap} steps per workflow"
            )
        step = WorkflowStep(workflow_id=workflow_id)
        _apply_step(step, data)
        step = await repo.add_step(step)
        await session.refresh(step, ["created_on", "updated_on"])
        return step

    async def update_step(
        self,
        session: AsyncSession,
        principal: Principal,
        workflow_id: int,
        step_id: int,
        data: WorkflowStepInput,
    ) -> WorkflowStep:
        step = await self._step(session, principal, workflow_id, step_id)
        await check_step(session, principal.department_id, data)
        _apply_step(step, data)
        step.updated_on = func.now()
        await session.flush()
        await session.refresh(step, ["updated_on"])
        return step

    async def delete_step(
        self, session: AsyncSession, principal: Principal, workflow_id: int, step_id: int
    ) -> None:
        await self._step(session, principal, workflow_id, step_id)
        await WorkflowRepository(session).delete_step(step_id)

    async def _step(
        self, session: AsyncSession, principal: Principal, workflow_id: int, step_id: int
    ) -> WorkflowStep:
        repo = WorkflowRepository(session)
        if await repo.get(principal.department_id, workflow_id, for_update=True, with_steps=False) is None:
            raise _not_found(workflow_id)
        step = await repo.get_step(workflow_id, step_id)
        if step is None:
            raise NotFound(f"Step {step_id} of workflow {workflow_id} was not found")
        return step


workflow_service = WorkflowService()
