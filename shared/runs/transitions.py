"""The legal transitions of a run, who takes each, and the statement that does (docs/runs.md).

This table is what docs/runs.md draws; tests/unit/test_run_transitions.py checks that each named
statement exists and that the statuses a statement's SQL writes are those listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from shared.enums import RunStatus

Pending, Running, Completed, Failed, Cancelled, Retrying = (
    RunStatus.Pending,
    RunStatus.Running,
    RunStatus.Completed,
    RunStatus.Failed,
    RunStatus.Cancelled,
    RunStatus.Retrying,
)


@dataclass(frozen=True, slots=True)
class Step:
    sources: frozenset[RunStatus]  # empty: the run does not exist yet
    targets: frozenset[RunStatus]  # equal to sources: the status stays, other columns change
    by: str
    statement: str  # the name in shared.runs (statements, cancel, outbox)


def _s(*statuses: RunStatus) -> frozenset[RunStatus]:
    return frozenset(statuses)


class Transition(Enum):
    CREATE = Step(_s(), _s(Pending), "dispatcher", "statements.CREATE")
    DEFER = Step(_s(Pending), _s(), "dispatcher (per-minute limit)", "statements.LIMIT_NEW")
    CAP = Step(_s(Pending), _s(Failed), "dispatcher (daily cap)", "statements.LIMIT_NEW")
    PUBLISH = Step(_s(Pending), _s(), "whoever produced the run message", "statements.PUBLISH")
    RELEASE = Step(_s(Pending, Retrying), _s(), "dispatcher scheduler", "statements.RELEASE_DUE")
    CLAIM = Step(_s(Pending, Retrying, Running), _s(Running), "executor", "statements.CLAIM")
    RENEW = Step(_s(Running), _s(), "executor", "statements.RENEW")
    RECORD_STEP = Step(_s(Running), _s(), "executor", "statements.RECORD_STEPS")
    SETTLE = Step(_s(Running), _s(Completed, Failed), "executor", "statements.SETTLE")
    RETRY = Step(_s(Running), _s(Retrying), "executor", "statements.SETTLE")
    REAP = Step(_s(Running), _s(Pending), "dispatcher scheduler", "statements.REAP_EXPIRED_LEASES")
    CANCEL = Step(_s(Pending, Running, Retrying), _s(Cancelled), "API", "cancel.cancel")
    CLEAR_OUTCOME_PENDING = Step(
        _s(Completed, Failed, Cancelled),
        _s(),
        "executor, dispatcher, API",
        "statements.CLEAR_OUTCOMES_PENDING",
    )
    PURGE = Step(_s(Completed, Failed, Cancelled), _s(), "health retention", "statements.DELETE_RUNS")


def allowed(source: RunStatus, target: RunStatus) -> bool:
    """Whether some transition changes a run's status from ``source`` to ``target``."""
    return any(source in t.value.sources and target in t.value.targets for t in Transition)
