"""WF_DB_PREPARED_STATEMENTS=false: no server-side prepared statements (PgBouncer in transaction
mode), in the SQLAlchemy engine and in the psycopg statement pool, against the real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db.engine import create_engine, create_statement_pool

REPEATS = 8  # psycopg prepares after prepare_threshold (5) uses


@pytest.mark.parametrize("prepared", [True, False])
async def test_statements_are_prepared_only_when_allowed(settings, prepared):
    cfg = settings.model_copy(update={"db_prepared_statements": prepared})
    engine = create_engine(cfg, pool_size=1)
    try:
        async with engine.connect() as conn:
            for i in range(REPEATS):
                await conn.execute(text("SELECT 1 + :i"), {"i": i})
            count = (await conn.execute(text("SELECT count(*) FROM pg_prepared_statements"))).scalar_one()
        assert (count > 0) is prepared
    finally:
        await engine.dispose()

    pool = create_statement_pool(cfg, name="probe", max_size=1)
    await pool.open()
    try:
        async with pool.connection() as conn:
            for i in range(REPEATS):
                await conn.execute("SELECT 2 + %(i)s", {"i": i})
            row = await (await conn.execute("SELECT count(*) FROM pg_prepared_statements")).fetchone()
        assert row is not None
        assert (row[0] > 0) is prepared
    finally:
        await pool.close()
