"""Index workflow_runs by (workflow_id, queued_on) for the health figures' time windows.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_index("ix_workflow_runs_workflow_queued_on", "workflow_runs", ["workflow_id", "queued_on"])


def downgrade() -> None:
    op.drop_index("ix_workflow_runs_workflow_queued_on", table_name="workflow_runs")
