from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.department.service import lock_department
from services.api.errors import NotFound, PlanLimitReached
from services.api.workflows.repository import WorkflowRepository
from services.api.workflows.schemas import WorkflowInput, WorkflowStepInput
from shared.auth import Principal
from shared.models import Workflow, WorkflowStep
from shared.plans import MAX_RETRY_CEILING, limits_for


class WorkflowService:
    async def list(self, session: AsyncSession, principal: Principal) -> Sequence[Workflow]:
        return await WorkflowRepository.from_session(session).list(principal.department_id)

    async def get(self, session: AsyncSession, principal: Principal, workflow_id: int) -> Workflow:
        workflow = await WorkflowRepository.from_session(session).get(principal.department_id, workflow_id)
        if workflow is None:
            raise NotFound(f"Workflow {workflow_id} was not found")
        return workflow

    async def create(self, session: AsyncSession, principal: Principal, data: WorkflowInput) -> Workflow:
        plan = await lock_department(session, principal.department_id)
        cap = limits_for(plan).workflows
        count = (await session.execute(
            select(func.count()).select_from(Workflow).where(Workflow.department_id == principal.department_id)
        )).scalar_one()
        if count >= cap:
            raise PlanLimitReached(
                f"Workflow limit reached: the {plan.value} plan allows {cap} workflows per department"
            )
        workflow = Workflow(
            department_id=principal.department_id,
            name=data.Name,
            description=data.Description,
            trigger_event_type=data.TriggerEventType,
            is_enabled=data.IsEnabled,
            max_retry_count=min(data.MaxRetryCount, MAX_RETRY_CEILING),
            retry_backoff_base_seconds=data.RetryBackoffBaseSeconds,
            created_by=principal.user_id,
        )
        workflow = await WorkflowRepository.from_session(session).add(workflow)
        await session.refresh(workflow, ["steps", "created_on", "updated_on"])
        return workflow

    async def add_step(self, session: AsyncSession, principal: Principal, workflow_id: int,
                       data: WorkflowStepInput) -> WorkflowStep:
        repo = WorkflowRepository.from_session(session)
        plan = await lock_department(session, principal.department_id)
        workflow = await repo.get(principal.department_id, workflow_id, for_update=True)
        if workflow is None:
            raise NotFound(f"Workflow {workflow_id} was not found")
        cap = limits_for(plan).steps_per_workflow
        if len(workflow.steps) >= cap:
            raise PlanLimitReached(f"Step limit reached: the {plan.value} plan allows {cap} steps per workflow")
        step = WorkflowStep(
            workflow_id=workflow.workflow_id,
            action_type=data.ActionType,
            step_order=data.StepOrder,
            output_template=data.OutputTemplate,
            action_config=data.ActionConfig,
            workflow_credential_id=data.WorkflowCredentialId,
            is_enabled=data.IsEnabled,
            condition_expression=data.ConditionExpression,
        )
        step = await repo.add_step(step)
        await session.refresh(step, ["created_on", "updated_on"])
        return step


workflow_service = WorkflowService()
