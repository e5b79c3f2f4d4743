from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, Timestamped


class Workflow(Timestamped, Base):
    __tablename__ = "workflows"
    __table_args__ = (
        Index(
            "ix_workflows_match", "department_id", "trigger_event_type", postgresql_where=text("is_enabled")
        ),
    )
    workflow_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(250))
    description: Mapped[str | None] = mapped_column(String(1000))
    trigger_event_type: Mapped[int] = mapped_column(SmallInteger)
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_retry_count: Mapped[int] = mapped_column(SmallInteger, default=3)
    retry_backoff_base_seconds: Mapped[int] = mapped_column(Integer, default=5)
    created_by: Mapped[str | None] = mapped_column(String(128))
    steps: Mapped[list[WorkflowStep]] = relationship(
        lazy="raise",
        order_by="WorkflowStep.step_order, WorkflowStep.workflow_step_id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class WorkflowStep(Timestamped, Base):
    __tablename__ = "workflow_steps"
    workflow_step_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(
        ForeignKey("workflows.workflow_id", ondelete="CASCADE"), index=True
    )
    action_type: Mapped[int] = mapped_column(SmallInteger)
    step_order: Mapped[int] = mapped_column(Integer, default=0)
    output_template: Mapped[str] = mapped_column(Text)
    action_config: Mapped[str | None] = mapped_column(Text)
    # No foreign key: a deleted credential must leave the reference so the step can name it when it fails.
    workflow_credential_id: Mapped[int | None] = mapped_column(Integer)
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    condition_expression: Mapped[str | None] = mapped_column(Text)


class WorkflowChange(Base):
    """Appended by database triggers when workflows or plans change; dispatchers poll it to refresh
    their matching index (transactional, so no change is lost the way a post-commit message could be)."""

    __tablename__ = "workflow_changes"
    change_id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer)
    changed_on: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("clock_timestamp()"), index=True
    )


class WorkflowChangeHead(Base):
    """The id of the last workflow change (one row). The change trigger increments it under its row
    lock, so change ids commit in order: a dispatcher that reads head N can see every change up to N."""

    __tablename__ = "workflow_change_head"
    __table_args__ = (CheckConstraint("singleton", name="singleton"),)
    singleton: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=true())
    change_id: Mapped[int] = mapped_column(BigInteger)
