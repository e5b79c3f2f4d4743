"""One partial index of unfinished runs, by (department_id, workflow_id), instead of two (by
department, and by workflow and queue time): the API's pending list and clear-all use its first
column, the health figures' open-run counts both. Every run enters it when stored, and each index
of workflow_runs is written again on each status change (bench/README.md, dispatch and scale).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN (0, 1, 5)")


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index("ix_workflow_runs_open_by_workflow", table_name="workflow_runs")
    op.drop_index("ix_workflow_runs_open", table_name="workflow_runs", postgresql_where=OPEN)
    op.create_index(
        "ix_workflow_runs_open", "workflow_runs", ["department_id", "workflow_id"], postgresql_where=OPEN
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index("ix_workflow_runs_open", table_name="workflow_runs", postgresql_where=OPEN)
    op.create_index("ix_workflow_runs_open", "workflow_runs", ["department_id"], postgresql_where=OPEN)
    op.create_index(
        "ix_workflow_runs_open_by_workflow",
        "workflow_runs",
        ["workflow_id", "queued_on"],
        postgresql_where=sa.text("status IN (0, 1, 5) AND NOT is_test"),
    )
