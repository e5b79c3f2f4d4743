"""Performing one run: steps in order, each at most once per run, then Completed/Retrying/Failed.

- The run is claimed with a lease; a heartbeat renews it while steps run, and each step first
  renews it explicitly, which is also where cancellation is noticed (a Cancelled run cannot be
  renewed), so a cancelled run performs nothing more.
- The ledger (run_step_ledger) records each step's outcome together with its log row; a retry, a
  redelivered message or a second executor never performs a completed step again.
- A failed step does not stop the following steps (independent notifications still go out); the
  run retries only the steps without an outcome, after base × 2^(attempt−1) s plus up to 10 % jitter.
  A step that failed for good (permanent error) is not repeated, yet still makes the run Failed even
  when the retried steps then succeed.
- Every step attempt, skipped ones included, leaves one log row; template errors name the part of
  the step they are in (ConditionExpression, OutputTemplate, ActionConfig.<field>).
- A step performed but not yet recorded when its executor dies is performed again after the lease
  runs out (at-least-once for that one step; the Idempotency-Key / Message-ID let receivers dedupe).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from opentelemetry import trace

from services.executor import metrics
from services.executor.actions.base import (
    ActionContext,
    ActionDeps,
    ActionError,
    ActionResult,
    SendQuota,
    UnlimitedQuota,
)
from services.executor.egress import EgressGuard
from services.executor.quota import DailySendQuota
from services.executor.registry import ACTIONS
from services.executor.store import (
    ClaimedRun,
    RunDefinition,
    RunStore,
    Settlement,
    StepDefinition,
    StepRecord,
)
from shared import probes
from shared.actions.configs import ActionConfigError, coerce_rendered, parse_action_config
from shared.actions.registry import ACTION_CREDENTIALS
from shared.config import ActionSection, Settings
from shared.crypto import DecryptionError, Keyring, credential_aad
from shared.enums import ActionType, CredentialType, EventType, Plan, RunStatus
from shared.logging import get_logger
from shared.plans import limits_for
from shared.runs.outbox import produce_outcomes
from shared.runs.outcomes import run_outcome
from shared.templating import TemplateError, evaluate_condition, render, render_config
from shared.templating.budget import StepBudget
from shared.templating.context import build_context
from shared.tracing import tracer

log = get_logger(__name__)

RENDERED_LOG_CHARS = 4000
ERROR_CHARS = 4000
JITTER = 0.10


@dataclass(slots=True)
class StepOutcome:
    status: RunStatus
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None


@dataclass(slots=True)
class _Shown:
    """What a step's log row shows, filled in as far as the step got."""

    rendered: str | None = None
    result: str | None = None


@contextmanager
def _template_part(label: str) -> Iterator[None]:
    """Say which part of the step a template error is in ("OutputTemplate: line 1, column 4: ...")."""
    try:
        yield
    except TemplateError as exc:
        raise type(exc)(label.format(exc.message), line=exc.line, column=exc.column) from None


@dataclass(slots=True)
class RunReport:
    outcomes: list[tuple[StepDefinition, StepOutcome]] = field(default_factory=list)
    stopped: bool = False  # cancelled, or the lease was taken over
    # The last step's record, written with the settlement (one statement, see store.Settlement).
    unrecorded: list[StepRecord] = field(default_factory=list)


def backoff_seconds(base: int, attempt: int, *, rng: random.Random | None = None) -> float:
    delay = base * 2 ** max(0, attempt - 1)
    return float(delay * (1 + (rng or random).uniform(0, JITTER)))


def step_label(step: StepDefinition) -> str:
    try:
        name = ActionType(step.action_type).name
    except ValueError:
        name = f"action {step.action_type}"
    return f"Step {step.step_order} ({name})"


class RunExecutor:
    def __init__(
        self,
        store: RunStore,
        producer: AIOKafkaProducer,
        settings: Settings,
        keyring: Keyring,
        egress: EgressGuard,
        action_settings: ActionSection,
    ) -> None:
        self.store = store
        self.producer = producer
        self.settings = settings
        self.keyring = keyring
        self.egress = egress
        self.action_settings = action_settings
        self.in_flight: set[int] = set()

    async def process(self, run_id: int) -> None:
        claimed = await self.store.claim(run_id)
        if claimed is None:
            metrics.RUNS_SKIPPED.inc()
            return
        run, definition, resumed = claimed
        probes.stamp("executor.claimed", run.run_id)
        self.in_flight.add(run.run_id)
        bound = log.bind(
            run_id=run.run_id,
            workflow_id=run.workflow_id,
            department_id=run.department_id,
            event_id=run.event_id,
            attempt=run.attempt,
        )
        try:
            if definition is None:
                await self._settle(run, None, RunStatus.Failed, "The workflow was deleted")
                return
            # A first attempt of a fresh run has nothing in the ledger yet: skip the read.
            ledger = await self.store.ledger(run.run_id) if resumed or run.attempt > 1 else {}
            report = await self._perform(run, definition, ledger)
            if report.stopped:
                await self._record_now(report)
                bound.info("run.stopped")
                return
            await self._conclude(run, definition, report)
        finally:
            self.in_flight.discard(run.run_id)

    async def _perform(self, run: ClaimedRun, definition: RunDefinition, ledger: dict[int, str]) -> RunReport:
        report = RunReport()
        plan = Plan(definition.plan)
        context = build_context(
            EventType(run.event_type),
            run.payload,
            department_id=run.department_id,
            occurred_on=run.occurred_on,
            event_id=run.event_id,
        )
        pending = [s for s in definition.steps if s.step_id not in ledger]
        last = pending[-1].step_id if pending else None
        credentials = await self.store.credentials(
            run.department_id, sorted({s.credential_id for s in pending if s.credential_id is not None})
        )
        failed_before: list[StepDefinition] = []
        # The claim has just taken the lease and seen the run was not cancelled; later steps re-check.
        fresh_claim = True
        for step in definition.steps:
            if step.step_id in ledger:
                if ledger[step.step_id] == "failed":
                    failed_before.append(step)
                continue
            if not fresh_claim and not await self.store.renew(run.run_id):
                report.stopped = True
                return report
            fresh_claim = False
            # Nothing is awaited between the last step and the settlement but the settlement itself,
            # so its record can go with it: ledgered exactly when a separate statement would have been.
            unrecorded = report.unrecorded if step.step_id == last else None
            outcome = await self._step(run, step, plan, context, credentials, unrecorded)
            report.outcomes.append((step, outcome))
        if failed_before:
            await self._record_now(report)  # a read comes before the settlement: record first
            # A step that failed for good on an earlier attempt still fails the run, though not repeated.
            errors = await self.store.last_errors(run.run_id, [s.step_id for s in failed_before])
            report.outcomes.extend(
                (s, StepOutcome(RunStatus.Failed, errors.get(s.step_id), permanent=True))
                for s in failed_before
            )
            report.outcomes.sort(key=lambda pair: (pair[0].step_order, pair[0].step_id))
        return report

    async def _step(
        self,
        run: ClaimedRun,
        step: StepDefinition,
        plan: Plan,
        context: dict[str, Any],
        credentials: dict[int, tuple[int, dict[str, Any], str]],
        unrecorded: list[StepRecord] | None = None,
    ) -> StepOutcome:
        """Perform one step and always record it: log row, and ledger entry unless it may be retried.
        With ``unrecorded`` the record is appended there, for the settlement to write."""
        started = datetime.now(UTC)
        probes.stamp("step.started", run.run_id)
        clock = time.perf_counter()
        shown = _Shown()
        action_name = (
            ActionType(step.action_type).name
            if step.action_type in ActionType._value2member_map_
            else str(step.action_type)
        )
        outcome: StepOutcome
        span = tracer().start_span(
            f"step {action_name}",
            attributes={
                "workflows.run_id": run.run_id,
                "workflows.step_id": step.step_id,
                "workflows.action": action_name,
            },
        )
        try:
            with trace.use_span(span, end_on_exit=True):
                outcome = await self._attempt(run, step, plan, context, credentials, shown)
        except ActionError as exc:
            shown.result = exc.result
            outcome = StepOutcome(
                RunStatus.Failed, exc.message, permanent=exc.permanent, retry_after=exc.retry_after
            )
        except (TemplateError, ActionConfigError) as exc:
            outcome = StepOutcome(RunStatus.Failed, str(exc), permanent=True)
        except TimeoutError:
            outcome = StepOutcome(RunStatus.Failed, "The action timed out", permanent=False)
        except OSError as exc:
            outcome = StepOutcome(RunStatus.Failed, f"Connection error: {type(exc).__name__}: {exc}"[:500])
        except Exception as exc:  # a defect; fail the step visibly rather than the process
            log.exception("step.unexpected_error", run_id=run.run_id, step_id=step.step_id)
            outcome = StepOutcome(RunStatus.Failed, f"Unexpected error: {type(exc).__name__}", permanent=True)
        duration = int((time.perf_counter() - clock) * 1000)
        completed = datetime.now(UTC)
        ledger_outcome = {RunStatus.Completed: "completed", RunStatus.Skipped: "skipped"}.get(outcome.status)
        if outcome.status is RunStatus.Failed and outcome.permanent:
            ledger_outcome = "failed"
        record = StepRecord(
            run_id=run.run_id,
            step_id=step.step_id,
            attempt=run.attempt,
            status=int(outcome.status),
            rendered=shown.rendered[:RENDERED_LOG_CHARS] if shown.rendered is not None else None,
            result=shown.result[:ERROR_CHARS] if shown.result else None,
            error=outcome.error[:ERROR_CHARS] if outcome.error else None,
            started=started,
            completed=completed,
            duration=duration,
            outcome=ledger_outcome,
        )
        if unrecorded is None:
            await self.store.record_step(record)
        else:
            unrecorded.append(record)
        metrics.STEPS.labels(action_name, outcome.status.name).inc()
        metrics.ACTION_SECONDS.labels(action_name).observe(duration / 1000)
        return outcome

    async def _attempt(
        self,
        run: ClaimedRun,
        step: StepDefinition,
        plan: Plan,
        context: dict[str, Any],
        credentials: dict[int, tuple[int, dict[str, Any], str]],
        shown: _Shown,
    ) -> StepOutcome:
        """Condition, credential, rendering and the action; what the log shows is kept in ``shown``."""
        budget = StepBudget()  # one render-time budget for all of the step's templates
        if step.condition:
            with _template_part("ConditionExpression: {}"):
                passed, output = await budget.run(evaluate_condition, step.condition, context)
            if not passed:
                shown.rendered = step.condition
                shown.result = f"Step skipped: condition evaluated to '{output.strip()[:200]}'"
                return StepOutcome(RunStatus.Skipped)
        action_type = ActionType(step.action_type)
        credential = self._credential(run, step, action_type, credentials)
        with _template_part("OutputTemplate: {}"):
            shown.rendered = await budget.render(render, step.output_template, context)
        raw_config = parse_action_config(
            action_type, step.action_config, has_credential=step.credential_id is not None
        )
        with _template_part("ActionConfig.{}"):  # render_config names the field: "url: line 1, ..."
            rendered_config = await budget.render(render_config, raw_config, context)
        # Default file names are stamped with the queue time, so a retry writes the same file.
        config = coerce_rendered(
            action_type, rendered_config, now=run.queued_on, has_credential=step.credential_id is not None
        )
        ctx = ActionContext(
            run_id=run.run_id,
            step_id=step.step_id,
            workflow_id=run.workflow_id,
            department_id=run.department_id,
            action_type=action_type,
            content=shown.rendered,
            config=dict(config),
            credential=credential,
            plan=plan,
            attempt=run.attempt,
        )
        deps = ActionDeps(
            egress=self.egress,
            settings=self.action_settings,
            quota=self._quota(run.department_id, action_type, plan),
        )
        action_result = await self._run_action(action_type, ctx, deps)
        shown.result = action_result.message
        return StepOutcome(RunStatus.Completed)

    async def _run_action(
        self, action_type: ActionType, ctx: ActionContext, deps: ActionDeps
    ) -> ActionResult:
        action = ACTIONS.get(action_type)
        if action is None:
            raise ActionError(f"{action_type.name} is not available in this version", permanent=True)
        timeout = (
            self.action_settings.upload_timeout_s
            if "Upload" in action_type.name
            else max(self.action_settings.http_timeout_s, 125.0)
        )
        return await asyncio.wait_for(action(ctx, deps), timeout=timeout + 5)

    def _credential(
        self,
        run: ClaimedRun,
        step: StepDefinition,
        action_type: ActionType,
        credentials: dict[int, tuple[int, dict[str, Any], str]],
    ) -> dict[str, Any] | None:
        allowed = ACTION_CREDENTIALS[action_type]
        if step.credential_id is None:
            if None in allowed:
                return None
            raise ActionError(f"{action_type.name} needs a credential and this step has none", permanent=True)
        found = credentials.get(step.credential_id)
        if found is None:
            raise ActionError(
                f"Credential {step.credential_id} used by this step was deleted or is not "
                "available to this department",
                permanent=True,
            )
        ctype, public, token = found
        if CredentialType(ctype) not in allowed:
            raise ActionError(
                f"Credential {step.credential_id} is a {CredentialType(ctype).name} credential, "
                f"which {action_type.name} cannot use",
                permanent=True,
            )
        try:
            secret = self.keyring.decrypt_json(
                run.department_id, token, aad=credential_aad(step.credential_id)
            )
        except DecryptionError:
            raise ActionError(
                f"Credential {step.credential_id} could not be decrypted (was the master key "
                "rotated without re-encrypting?)",
                permanent=True,
            ) from None
        return {**public, **secret}

    def _quota(self, department_id: int, action_type: ActionType, plan: Plan) -> SendQuota:
        limits = limits_for(plan)
        if action_type is ActionType.SendEmail:
            return DailySendQuota(
                self.store.engine,
                department_id=department_id,
                channel="email",
                cap=limits.emails_per_day,
                plan_name=plan.value,
            )
        if action_type is ActionType.SendSms:
            return DailySendQuota(
                self.store.engine,
                department_id=department_id,
                channel="sms",
                cap=limits.sms_per_day,
                plan_name=plan.value,
            )
        return UnlimitedQuota()

    async def _record_now(self, report: RunReport) -> None:
        """Write the step record kept for the settlement when something else must come first."""
        for record in report.unrecorded:
            await self.store.record_step(record)
        report.unrecorded.clear()

    async def _conclude(self, run: ClaimedRun, definition: RunDefinition, report: RunReport) -> None:
        records = report.unrecorded
        failures = [(s, o) for s, o in report.outcomes if o.status is RunStatus.Failed]
        if not failures:
            await self._settle(run, definition, RunStatus.Completed, None, records=records)
            return
        step, first = failures[0]
        message = f"{step_label(step)} failed: {first.error}"
        if len(failures) > 1:
            message += f" (and {len(failures) - 1} more step(s) failed)"
        retryable = [o for _, o in failures if not o.permanent]
        if retryable and run.attempt <= definition.max_retry_count:
            delay = backoff_seconds(definition.backoff_base_s, run.attempt)
            hints = [o.retry_after for o in retryable if o.retry_after]
            if hints:
                delay = max(delay, min(max(hints), self.action_settings.max_retry_after_s))
            delay = min(delay, self.settings.executor_max_backoff_s)
            next_at = datetime.now(UTC) + timedelta(seconds=delay)
            await self._settle(
                run,
                definition,
                RunStatus.Retrying,
                message,
                next_attempt_on=next_at,
                attempt=run.attempt + 1,
                records=records,
            )
            metrics.RETRIES.inc()
            return
        if retryable:
            message += f" — gave up after {run.attempt} attempt(s)"
        await self._settle(run, definition, RunStatus.Failed, message, records=records)

    async def _settle(
        self,
        run: ClaimedRun,
        definition: RunDefinition | None,
        status: RunStatus,
        error: str | None,
        *,
        next_attempt_on: datetime | None = None,
        attempt: int | None = None,
        records: list[StepRecord] | None = None,
    ) -> None:
        final = status is not RunStatus.Retrying
        row = await self.store.settle(
            Settlement(
                run_id=run.run_id,
                status=int(status),
                final=final,
                error=error[:ERROR_CHARS] if error else None,
                next_attempt_on=next_attempt_on,
                attempt=attempt or run.attempt,
                records=list(records or ()),
            )
        )
        if row is None:
            return  # cancelled meanwhile, or another executor took over
        metrics.RUNS.labels(status.name).inc()
        if final:
            workflow_id, department_id, queued_on, started_on, completed_on, is_test = row
            outcome = run_outcome(
                run.run_id,
                workflow_id,
                department_id,
                status,
                is_test,
                attempt or run.attempt,
                queued_on,
                started_on,
                completed_on,
                error[:ERROR_CHARS] if error else None,
            )
            # The run row is the outbox (shared/runs/outbox.py): unacknowledged, the outcome stays marked
            # and the scheduler publishes it after the grace period.
            try:
                await produce_outcomes(self.producer, self.settings, [outcome])
            except Exception as exc:
                log.warning("run.outcome_not_published", run_id=run.run_id, error=type(exc).__name__)
                return
            self.store.outcome_published(run.run_id)
