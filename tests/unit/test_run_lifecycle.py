"""The run lifecycle's pieces that need no database: the run message's wire format, the transition
table, and the one builder of RunOutcome."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import orjson
import pytest

from shared.enums import RunStatus
from shared.messages import RunMessage, RunOutcome
from shared.runs.outbox import RunToPublish, run_message
from shared.runs.outcomes import run_outcome
from shared.runs.transitions import Transition, allowed


def test_the_run_message_keeps_its_wire_format() -> None:
    wire = b'{"RunId":41,"DepartmentId":7,"AttemptNumber":2}'
    assert RunMessage(41, 7, 2).to_bytes() == wire
    assert run_message(RunToPublish(41, 7, 2)) == wire
    assert RunMessage.from_bytes(wire) == RunMessage(41, 7, 2)


def test_a_run_message_needs_only_a_numeric_run_id() -> None:
    assert RunMessage.from_bytes(b'{"RunId":5}').RunId == 5
    with pytest.raises(KeyError):
        RunMessage.from_bytes(b'{"DepartmentId":5}')
    with pytest.raises(ValueError, match="invalid literal for int"):
        RunMessage.from_bytes(orjson.dumps({"RunId": "x"}))
    with pytest.raises(orjson.JSONDecodeError):
        RunMessage.from_bytes(b"not a run message")


def test_an_outcome_is_built_from_a_runs_columns_in_order() -> None:
    queued = datetime(2026, 12, 1, 12, tzinfo=UTC)
    outcome = run_outcome(9, 3, 7, 3, True, 2, queued, None, queued, "boom")
    assert outcome == RunOutcome(
        RunId=9,
        WorkflowId=3,
        DepartmentId=7,
        Status=RunStatus.Failed,
        IsTest=True,
        AttemptNumber=2,
        QueuedOn=queued,
        CompletedOn=queued,
        ErrorMessage="boom",
    )


@pytest.mark.parametrize("transition", list(Transition), ids=lambda t: t.name)
def test_each_transition_names_a_statement_that_exists(transition: Transition) -> None:
    module, name = transition.value.statement.split(".")
    assert getattr(importlib.import_module(f"shared.runs.{module}"), name) is not None


def test_final_runs_never_go_back() -> None:
    final = (RunStatus.Completed, RunStatus.Failed, RunStatus.Cancelled)
    for source in final:
        for target in RunStatus:
            if target != source:
                assert not allowed(source, target), (source, target)
    assert allowed(RunStatus.Running, RunStatus.Retrying)
    assert allowed(RunStatus.Retrying, RunStatus.Running)
    assert allowed(RunStatus.Running, RunStatus.Pending)  # reaped
    assert not allowed(RunStatus.Pending, RunStatus.Completed)
