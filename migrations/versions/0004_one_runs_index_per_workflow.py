"""Drop ix_workflow_runs_workflow_queued (workflow_id, workflow_run_id DESC): the API's per-workflow
run listing now orders by queue time and uses ix_workflow_runs_workflow_queued_on, as the health
windows do. Every index of workflow_runs is written on each insert and on each status change (those
updates cannot be HOT), and the ones led by workflow_id scatter their writes over as many leaf pages
as there are workflows (bench/README.md, scale).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index("ix_workflow_runs_workflow_queued", table_name="workflow_runs")


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_index(
        "ix_workflow_runs_workflow_queued", "workflow_runs", ["workflow_id", sa.text("workflow_run_id DESC")]
    )
