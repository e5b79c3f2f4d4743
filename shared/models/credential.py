from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, SmallInteger, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, Timestamped


class WorkflowCredential(Timestamped, Base):
    """Non-secret fields in clear (for masked responses); secret fields encrypted as one JSON blob."""

    __tablename__ = "workflow_credentials"
    workflow_credential_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(250))
    credential_type: Mapped[int] = mapped_column(SmallInteger)
    public_data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    secret_keys: Mapped[list[str]] = mapped_column(JSONB, default=list)
    encrypted_data: Mapped[str] = mapped_column(Text)
