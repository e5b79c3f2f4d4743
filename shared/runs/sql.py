"""Run status values for SQL text, from ``RunStatus``: statements interpolate these once, at import,
so their text (and the prepared statements the drivers cache) is what it was with literal digits."""

from __future__ import annotations

from shared.enums import RunStatus

PENDING = int(RunStatus.Pending)
RUNNING = int(RunStatus.Running)
COMPLETED = int(RunStatus.Completed)
FAILED = int(RunStatus.Failed)
CANCELLED = int(RunStatus.Cancelled)
RETRYING = int(RunStatus.Retrying)
SKIPPED = int(RunStatus.Skipped)

# Lists for ``status IN ...``; their order is part of the statement text (and of the partial
# indexes' predicates in migrations/, which the planner matches against).
WAITING = f"({PENDING}, {RETRYING})"  # may be claimed once due
OPEN = f"({PENDING}, {RUNNING}, {RETRYING})"
FINAL = f"({COMPLETED}, {FAILED}, {CANCELLED})"
