from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base
from shared.runs.sql import OPEN, PENDING, RUNNING, WAITING


class WorkflowRun(Base):
    __tablename__ = "workflow_runs"
    __table_args__ = (
        # One EventId creates at most one run per workflow, however often it is delivered.
        UniqueConstraint("workflow_id", "event_id", name="uq_workflow_runs_workflow_event"),
        Index("ix_workflow_runs_department_queued", "department_id", text("workflow_run_id DESC")),
        # Unfinished runs: the API's pending list (by department), health's open-run counts (and workflow).
        Index(
            "ix_workflow_runs_open",
            "department_id",
            "workflow_id",
            postgresql_where=text(f"status IN {OPEN}"),
        ),
        # The scheduler's queue: runs waiting for their (first or next) message to executors.
        Index(
            "ix_workflow_runs_due",
            text("coalesce(next_attempt_on, queued_on)"),
            postgresql_where=text(f"status IN {WAITING} AND published_on IS NULL"),
        ),
        Index("ix_workflow_runs_lease", "lease_until", postgresql_where=text(f"status = {RUNNING}")),
        # The outcome outbox: final runs whose outcome message is not acknowledged yet.
        Index(
            "ix_workflow_runs_outcome_pending",
            "outcome_pending_since",
            postgresql_where=text("outcome_pending_since IS NOT NULL"),
        ),
        # A workflow's runs by queue time: the API's per-workflow listing and the health windows.
        Index("ix_workflow_runs_workflow_queued_on", "workflow_id", "queued_on"),
    )
    workflow_run_id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.workflow_id", ondelete="CASCADE"))
    department_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(SmallInteger, default=PENDING)
    trigger_event_type: Mapped[int] = mapped_column(SmallInteger)
    event_id: Mapped[str] = mapped_column(String(64))
    attempt_number: Mapped[int] = mapped_column(SmallInteger, default=1)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    input_payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    occurred_on: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    queued_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_on: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_on: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_on: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_on: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error_message: Mapped[str | None] = mapped_column(Text)
    # Set when the run became final, cleared once its outcome message is acknowledged (the outbox).
    outcome_pending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkflowRunLog(Base):
    __tablename__ = "workflow_run_logs"
    workflow_run_log_id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    workflow_run_id: Mapped[int] = mapped_column(
        ForeignKey("workflow_runs.workflow_run_id", ondelete="CASCADE"), index=True
    )
    workflow_step_id: Mapped[int] = mapped_column(Integer)
    attempt_number: Mapped[int] = mapped_column(SmallInteger, default=1)
    status: Mapped[int] = mapped_column(SmallInteger)
    rendered_output: Mapped[str | None] = mapped_column(Text)
    action_result: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    started_on: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_on: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)


class RunStepLedger(Base):
    """A step of a run that reached its outcome: never performed again for that run."""

    __tablename__ = "run_step_ledger"
    workflow_run_id: Mapped[int] = mapped_column(
        ForeignKey("workflow_runs.workflow_run_id", ondelete="CASCADE"), primary_key=True
    )
    workflow_step_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # 'completed', 'skipped' or 'failed' (a permanent failure is not attempted again either)
    outcome: Mapped[str] = mapped_column(String(16))
    completed_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
