"""RunOutcome messages for runs the API cancelled, so the health service counts them like any final run.

The cancelled rows carry their outbox mark (``outcome_pending_since``); it is cleared once the outcome
is acknowledged, and the dispatcher's scheduler publishes it later if that fails."""

from __future__ import annotations

from collections.abc import Sequence

from services.api.state import ApiState
from shared.logging import get_logger
from shared.models import WorkflowRun
from shared.runs.outbox import announce_outcomes
from shared.runs.outcomes import outcome_of

log = get_logger(__name__)


async def publish_outcomes(state: ApiState, runs: Sequence[WorkflowRun]) -> None:
    """Call after the cancel committed. A failure is logged, not raised: the cancel itself stands, and
    the outcome is published later from the outbox."""
    try:
        await announce_outcomes(state.engine, state.producer, state.settings, [outcome_of(r) for r in runs])
    except Exception as exc:  # the database, clearing the marks: the scheduler publishes them again
        log.warning("run.outcome_mark_not_cleared", runs=len(runs), error=type(exc).__name__)
