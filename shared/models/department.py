from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, Timestamped


class Department(Timestamped, Base):
    """A department's plan; departments themselves live upstream. Unknown departments are Free."""

    __tablename__ = "departments"
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    plan: Mapped[str] = mapped_column(String(16), default="Free")


class DepartmentRateState(Base):
    """Per-minute execution window cursor: runs are allotted to the earliest minute with room."""

    __tablename__ = "department_rate_state"
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_used: Mapped[int] = mapped_column(Integer, default=0)


class DepartmentDailyUsage(Base):
    """Daily counters per department and channel: 'runs' (free plan cap), 'email', 'sms'."""

    __tablename__ = "department_daily_usage"
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    usage_date: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger, default=0)
