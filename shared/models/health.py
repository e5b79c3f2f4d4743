from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base


class HealthRollup(Base):
    """Finished runs of a workflow per hour of queueing (what the health endpoint sums)."""

    __tablename__ = "health_rollups"
    workflow_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bucket_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    total_runs: Mapped[int] = mapped_column(Integer, default=0)
    success_runs: Mapped[int] = mapped_column(Integer, default=0)
    failed_runs: Mapped[int] = mapped_column(Integer, default=0)
    duration_sum_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_count: Mapped[int] = mapped_column(Integer, default=0)


class HealthLatest(Base):
    __tablename__ = "health_latest"
    workflow_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_run_on: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_on: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HealthCounted(Base):
    """Runs already counted in the rollups, so a redelivered outcome is counted once."""

    __tablename__ = "health_counted_runs"
    workflow_run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    counted_on: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
