"""Read-your-writes matching and the outcome outbox.

``workflow_change_head`` holds the id of the last workflow change. The change trigger increments it
(taking its row lock until the writing transaction ends) and numbers the change row with it, so
change ids commit in order and without gaps: once a dispatcher sees head N, every change up to N
is visible to it. Each dispatcher batch compares the head with the index's before matching
(services/dispatcher/matching.py).

``workflow_runs.outcome_pending_since`` makes the run row the outbox of its outcome: set by the
statement that makes a run final, cleared when the outcome message is acknowledged; the scheduler
publishes again what stays set past the grace period. NULL (nothing pending) for existing rows.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

ORDERED_CHANGE = """
CREATE OR REPLACE FUNCTION record_workflow_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    next_id bigint;
BEGIN
    -- The head row stays locked until this transaction ends: changes commit in the order of their ids.
    UPDATE workflow_change_head SET change_id = change_id + 1 RETURNING change_id INTO next_id;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO workflow_changes (change_id, department_id) VALUES (next_id, OLD.department_id);
    ELSE
        INSERT INTO workflow_changes (change_id, department_id) VALUES (next_id, NEW.department_id);
        IF TG_OP = 'UPDATE' AND OLD.department_id IS DISTINCT FROM NEW.department_id THEN
            UPDATE workflow_change_head SET change_id = change_id + 1 RETURNING change_id INTO next_id;
            INSERT INTO workflow_changes (change_id, department_id) VALUES (next_id, OLD.department_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;
"""

UNORDERED_CHANGE = """
CREATE OR REPLACE FUNCTION record_workflow_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO workflow_changes (department_id) VALUES (OLD.department_id);
    ELSE
        INSERT INTO workflow_changes (department_id) VALUES (NEW.department_id);
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "workflow_change_head",
        sa.Column("singleton", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("change_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("singleton", name=op.f("pk_workflow_change_head")),
        sa.CheckConstraint("singleton", name=op.f("ck_workflow_change_head_singleton")),
    )
    op.execute(
        "INSERT INTO workflow_change_head (singleton, change_id) "
        "SELECT true, greatest(coalesce((SELECT max(change_id) FROM workflow_changes), 0), "
        "(SELECT last_value FROM workflow_changes_change_id_seq))"
    )
    op.execute(ORDERED_CHANGE)
    op.add_column(
        "workflow_runs", sa.Column("outcome_pending_since", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_workflow_runs_outcome_pending",
        "workflow_runs",
        ["outcome_pending_since"],
        postgresql_where=sa.text("outcome_pending_since IS NOT NULL"),
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index(
        "ix_workflow_runs_outcome_pending",
        table_name="workflow_runs",
        postgresql_where=sa.text("outcome_pending_since IS NOT NULL"),
    )
    op.drop_column("workflow_runs", "outcome_pending_since")
    op.execute(UNORDERED_CHANGE)
    op.execute(
        "SELECT setval('workflow_changes_change_id_seq', "
        "greatest((SELECT change_id FROM workflow_change_head), 1))"
    )
    op.drop_table("workflow_change_head")
