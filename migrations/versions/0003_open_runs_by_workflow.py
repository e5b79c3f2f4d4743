"""Partial index of unfinished runs per workflow: health figures add them to the rollups' counts.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_index(
        "ix_workflow_runs_open_by_workflow",
        "workflow_runs",
        ["workflow_id", "queued_on"],
        postgresql_where=sa.text("status IN (0, 1, 5) AND NOT is_test"),
    )


def downgrade() -> None:
    op.drop_index("ix_workflow_runs_open_by_workflow", table_name="workflow_runs")
