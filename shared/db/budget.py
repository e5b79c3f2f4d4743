"""How many PostgreSQL connections one process of each service opens at most.

The deployment's budget is sum over services of (maximum replicas x connections_per_pod) plus what is
reserved (superuser_reserved_connections, the migration Job, psql sessions); it must stay within
PostgreSQL's max_connections (or PgBouncer's max_client_conn). docs/deployment.md gives the formula;
the Helm chart refuses to render over it and tests/deploy checks the two agree.
"""

from __future__ import annotations

from shared.config import Settings

# The health service sizes its SQLAlchemy pool itself (services/health/service.py).
HEALTH_POOL_SIZE = 4
# The dispatcher's per-batch change-log head check (services/dispatcher/service.py).
DISPATCHER_HEADS_POOL_SIZE = 1


def connections_per_pod(service: str, settings: Settings) -> int:
    pool = settings.db_pool_size + settings.db_max_overflow
    if service in ("api", "executor"):
        return 2 * pool  # a SQLAlchemy engine and a psycopg statement pool, each up to pool + overflow
    if service == "dispatcher":
        return pool + DISPATCHER_HEADS_POOL_SIZE  # a SQLAlchemy engine and the matching index's head check
    if service == "health":
        return HEALTH_POOL_SIZE + settings.db_max_overflow
    raise ValueError(f"unknown service {service!r}")
