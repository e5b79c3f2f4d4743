"""Every statement that changes a ``workflow_runs`` row (and the step log and ledger rows written with
a step), named for the transition it takes (docs/runs.md has the diagram and who runs each).

The text is raw SQL where it is faster than the ORM: the dispatcher's batch inserts, the executor's
coalesced statements (shared/db/coalescer.py). Status values come from ``shared.runs.sql``, set into
the text once at import, so each statement's text is the same on every call (prepared statements
stay cached). Statements run through SQLAlchemy are ``text()`` clauses (``:name`` parameters); those the
executor runs on plain psycopg are strings (``%(name)s`` parameters).
"""

from __future__ import annotations

from sqlalchemy import text

from shared.runs.sql import FAILED, FINAL, PENDING, RUNNING, WAITING

# --- create (dispatcher) -----------------------------------------------------------------------------

# The batch travels as one JSON array unpacked by jsonb_to_recordset: orjson builds it in C, where
# psycopg's list-to-array dumping of six parallel lists was the dispatcher's largest CPU cost (py-spy,
# bench/README.md). Runs are stored Pending and already marked published (services/dispatcher/batch.py).
CREATE = text(
    f"""
    INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, attempt_number,
                               is_test, input_payload, occurred_on, queued_on, published_on)
    SELECT t.workflow_id, t.department_id, {PENDING}, t.event_type, t.event_id, 1, coalesce(t.is_test, false), t.payload,
           t.occurred_on, now(), now()
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS t(workflow_id int, department_id int, event_type int, event_id text, payload jsonb,
              occurred_on timestamptz, is_test boolean)
    JOIN workflows w ON w.workflow_id = t.workflow_id AND w.department_id = t.department_id
    ON CONFLICT (workflow_id, event_id) DO NOTHING
    RETURNING workflow_run_id, workflow_id, event_id, queued_on
    """
)

# Runs of a redelivered event that exist already and still wait for their first claim: their messages
# may never have been acknowledged (the offset was not committed), so they are produced again.
EXISTING_WAITING = text(
    f"""
    SELECT r.workflow_run_id, r.workflow_id, r.event_id, r.queued_on
    FROM jsonb_to_recordset(CAST(:keys AS jsonb)) AS k(workflow_id int, event_id text)
    JOIN workflow_runs r ON r.workflow_id = k.workflow_id AND r.event_id = k.event_id
    WHERE r.status = {PENDING} AND r.next_attempt_on IS NULL
    """
)

# --- defer / cap (dispatcher, in the create transaction) -----------------------------------------------

# New runs past the per-minute limit get a next_attempt_on (deferred, unpublished); past the daily cap
# they become Failed (and final: their outcome is marked pending in the outbox).
LIMIT_NEW = text(
    f"""
    UPDATE workflow_runs r
    SET status = t.status, next_attempt_on = t.next_attempt_on, error_message = t.error,
        completed_on = CASE WHEN t.status = {FAILED} THEN now() END, published_on = NULL,
        outcome_pending_since = CASE WHEN t.status = {FAILED} THEN now() END
    FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS int[]), CAST(:next AS timestamptz[]),
                CAST(:errors AS text[])) AS t(id, status, next_attempt_on, error)
    WHERE r.workflow_run_id = t.id
    """
)

# --- publish (dispatcher, API; the run row is the outbox: shared/runs/outbox.py) -----------------------

PUBLISH = text(
    "UPDATE workflow_runs SET published_on = now() "
    "WHERE workflow_run_id = ANY(CAST(:ids AS bigint[])) AND published_on IS NULL"
)

# --- release (dispatcher's scheduler): deferred, retrying, or never-published runs whose time has come --

RELEASE_DUE = text(
    f"""
    WITH due AS (
        SELECT workflow_run_id FROM workflow_runs
        WHERE status IN {WAITING} AND published_on IS NULL
          AND coalesce(next_attempt_on, queued_on) <= now()
          AND (next_attempt_on IS NOT NULL OR queued_on <= now() - make_interval(secs => :grace))
        ORDER BY coalesce(next_attempt_on, queued_on)
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE workflow_runs r SET published_on = now()
    FROM due WHERE r.workflow_run_id = due.workflow_run_id
    RETURNING r.workflow_run_id, r.department_id, r.attempt_number, r.status, r.next_attempt_on IS NULL
    """
)

# --- reap (dispatcher's scheduler): a Running run whose executor stopped renewing goes back to Pending --

REAP_EXPIRED_LEASES = text(
    f"""
    WITH expired AS (
        SELECT workflow_run_id FROM workflow_runs
        WHERE status = {RUNNING} AND lease_until < now()
        LIMIT 500 FOR UPDATE SKIP LOCKED
    )
    UPDATE workflow_runs r
    SET status = {PENDING}, published_on = NULL, next_attempt_on = now(), lease_owner = NULL, lease_until = NULL
    FROM expired WHERE r.workflow_run_id = expired.workflow_run_id
    RETURNING r.workflow_run_id
    """
)

QUEUE_DEPTH = text(
    f"""
    SELECT count(*), coalesce(extract(epoch FROM now() - min(coalesce(next_attempt_on, queued_on))), 0)
    FROM workflow_runs
    WHERE status IN {WAITING} AND coalesce(next_attempt_on, queued_on) <= now()
    """
)

# --- claim (executor): a waiting run once due, or a Running one whose previous executor's lease ran out --

# Claims, step records and settlements of the runs in flight are coalesced (shared/db/coalescer.py):
# one statement serves every run that asked while the previous one was in flight.
CLAIM = f"""
    WITH claimed AS (
        UPDATE workflow_runs
        SET status = {RUNNING}, started_on = coalesce(started_on, now()), lease_owner = %(owner)s,
            lease_until = now() + make_interval(secs => %(lease)s)
        WHERE workflow_run_id = ANY(CAST(%(ids)s AS bigint[]))
          AND ((status IN {WAITING} AND coalesce(next_attempt_on, now()) <= now())
               OR (status = {RUNNING} AND lease_until < now()))
        RETURNING workflow_run_id, workflow_id, department_id, trigger_event_type, event_id, attempt_number,
                  is_test, input_payload, occurred_on, queued_on, started_on, started_on < now() AS resumed
    )
    SELECT c.*, w.name, w.max_retry_count, w.retry_backoff_base_seconds, coalesce(d.plan, 'Free'),
           (SELECT json_agg(json_build_array(s.workflow_step_id, s.action_type, s.step_order,
                                             s.output_template, s.action_config, s.workflow_credential_id,
                                             s.condition_expression)
                            ORDER BY s.step_order, s.workflow_step_id)
            FROM workflow_steps s WHERE s.workflow_id = c.workflow_id AND s.is_enabled)
    FROM claimed c
    LEFT JOIN workflows w ON w.workflow_id = c.workflow_id
    LEFT JOIN departments d ON d.department_id = c.department_id
    """

# --- renew (executor): the lease of a run it still holds ------------------------------------------------

RENEW = f"""
    UPDATE workflow_runs SET lease_until = now() + make_interval(secs => %(lease)s)
    WHERE workflow_run_id = %(run_id)s AND status = {RUNNING} AND lease_owner = %(owner)s
    RETURNING 1
    """

RENEW_MANY = (
    "UPDATE workflow_runs SET lease_until = now() + make_interval(secs => %(lease)s) "
    f"WHERE workflow_run_id = ANY(CAST(%(ids)s AS bigint[])) AND status = {RUNNING} AND lease_owner = %(owner)s"
)

# --- record step (executor) ---------------------------------------------------------------------------

# The log row and the ledger entry are written by one statement, so a step is never ledgered without
# its log row (or logged as done without its ledger entry). These CTEs write them from the JSON rows in
# ``%(records)s``; PostgreSQL runs a data-modifying CTE whether or not the main query reads it.
_WRITE_STEP_RECORDS = """
    WITH entry AS (
        SELECT * FROM jsonb_to_recordset(CAST(%(records)s AS jsonb))
            AS t(run_id bigint, step_id int, attempt int, status int, rendered text, result text, error text,
                 started timestamptz, completed timestamptz, duration int, outcome varchar)
    ), logged AS (
        INSERT INTO workflow_run_logs (workflow_run_id, workflow_step_id, attempt_number, status, rendered_output,
                                       action_result, error_message, started_on, completed_on, duration_ms)
        SELECT run_id, step_id, attempt, status, rendered, result, error, started, completed, duration FROM entry
    ), ledgered AS (
        INSERT INTO run_step_ledger (workflow_run_id, workflow_step_id, outcome, completed_on)
        SELECT run_id, step_id, outcome, completed FROM entry WHERE outcome IS NOT NULL
        ON CONFLICT DO NOTHING
    )"""

RECORD_STEPS = _WRITE_STEP_RECORDS + "\n    SELECT count(*) FROM entry\n"

# --- settle / retry (executor): Completed or Failed (final, outcome marked pending), or Retrying later --

# The run's last step records (log row + ledger entry, as RECORD_STEPS writes them) travel with its
# settlement: one statement, one commit, instead of a record and then a settle. The records are written
# whether or not the settlement applies (a run cancelled or taken over meanwhile still shows the step
# it performed), and never without each other: the statement commits or fails as a whole, exactly as a
# lone RECORD_STEPS would.
SETTLE = (
    _WRITE_STEP_RECORDS
    + f"""
    UPDATE workflow_runs r
    SET status = t.status, completed_on = CASE WHEN t.final THEN now() END, error_message = t.error,
        next_attempt_on = t.next_attempt_on, attempt_number = t.attempt,
        published_on = CASE WHEN t.final THEN r.published_on END,
        outcome_pending_since = CASE WHEN t.final THEN now() END,
        lease_owner = NULL, lease_until = NULL
    FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb))
        AS t(run_id bigint, status int, final boolean, error text, next_attempt_on timestamptz, attempt int)
    WHERE r.workflow_run_id = t.run_id AND r.status = {RUNNING} AND r.lease_owner = %(owner)s
    RETURNING r.workflow_run_id, r.workflow_id, r.department_id, r.queued_on, r.started_on, r.completed_on,
              r.is_test
    """
)

# --- outcome outbox: the mark set by every statement that makes a run final is cleared once the outcome
# message is acknowledged (shared/runs/outbox.py) ------------------------------------------------------

CLEAR_OUTCOMES_PENDING_SQL = (
    "UPDATE workflow_runs SET outcome_pending_since = NULL "
    "WHERE workflow_run_id = ANY(CAST(%(ids)s AS bigint[])) AND outcome_pending_since IS NOT NULL"
)
CLEAR_OUTCOMES_PENDING = text(
    "UPDATE workflow_runs SET outcome_pending_since = NULL "
    "WHERE workflow_run_id = ANY(CAST(:ids AS bigint[])) AND outcome_pending_since IS NOT NULL"
)

# The columns of a run's outcome, in the order shared.runs.outcomes.run_outcome takes them.
OUTCOME_COLUMNS = (
    "workflow_run_id, workflow_id, department_id, status, is_test, attempt_number, queued_on,\n"
    "           started_on, completed_on, error_message"
)

# Outcomes not acknowledged within the grace period, locked so that one scheduler replica publishes
# each; the caller produces them and clears their marks in the same transaction.
OUTCOMES_DUE = text(
    f"""
    SELECT {OUTCOME_COLUMNS}
    FROM workflow_runs
    WHERE outcome_pending_since <= now() - make_interval(secs => :grace)
    ORDER BY outcome_pending_since
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)

# --- purge (health's retention): only final runs are trimmed or deleted ---------------------------------

CLEAR_PAYLOADS = text(
    f"""
    UPDATE workflow_runs SET input_payload = NULL WHERE workflow_run_id IN (
        SELECT workflow_run_id FROM workflow_runs
        WHERE queued_on < now() - make_interval(days => :days) AND input_payload IS NOT NULL
          AND status IN {FINAL}
        LIMIT :batch)
    """
)
DELETE_RUNS = text(
    f"""
    DELETE FROM workflow_runs WHERE workflow_run_id IN (
        SELECT workflow_run_id FROM workflow_runs
        WHERE queued_on < now() - make_interval(days => :days) AND status IN {FINAL} LIMIT :batch)
    """
)
