"""The run lifecycle in one place (docs/runs.md).

- ``transitions``: the legal transitions of a run and who takes each;
- ``statements``: every SQL statement that changes a ``workflow_runs`` row (create, defer/cap, publish,
  release, reap, claim, renew, record step, settle/retry, clear the outcome mark, purge);
- ``cancel``: the API's cancels (ORM);
- ``outbox``: producing run messages and outcomes after the commit that makes them due;
- ``outcomes``: building a ``RunOutcome`` from a run;
- ``sql``: ``RunStatus`` values for SQL text.
"""
