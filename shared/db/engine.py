"""Async SQLAlchemy engine and the unit-of-work scope used by every service; a psycopg pool for
single-statement reads (the API's hot list)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, LiteralString

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shared.config import Settings


def create_engine(settings: Settings, *, pool_size: int | None = None, pre_ping: bool = True) -> AsyncEngine:
    """``pre_ping`` costs a round trip per checkout; consumers that retry their unit of work anyway
    turn it off and let a stale connection (after a database restart) fail one attempt instead."""
    return create_async_engine(
        settings.database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        # psycopg prepares statements after 5 uses; the hot paths run the same few statements.
        connect_args={"prepare_threshold": prepare_threshold(settings), "connect_timeout": 5},
    )


def prepare_threshold(settings: Settings) -> int | None:
    """psycopg's prepare_threshold: None never prepares server-side (PgBouncer in transaction mode
    hands each transaction a different server connection, where the prepared statement is missing)."""
    return 5 if settings.db_prepared_statements else None


StatementPool = AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]]


def create_statement_pool(settings: Settings, *, name: str, max_size: int | None = None) -> StatementPool:
    """Plain psycopg connections in autocommit for single statements (each atomic on its own): one
    round trip per statement (no pre-ping, BEGIN or COMMIT), statements prepared after 5 uses, and
    none of SQLAlchemy's per-statement work. It grows to ``max_size`` (pool size + overflow) under
    load and keeps those connections until idle for ``max_idle`` (10 min), where a QueuePool closes
    each overflow connection on return (a new connection per request once more requests are in
    flight than its pool_size). Open with ``await pool.open()``."""
    url = make_url(settings.database_url).set(drivername="postgresql")
    return AsyncConnectionPool(
        url.render_as_string(hide_password=False),
        min_size=1,
        max_size=max_size or settings.db_pool_size + settings.db_max_overflow,
        kwargs={"autocommit": True, "prepare_threshold": prepare_threshold(settings), "connect_timeout": 5},
        open=False,
        name=name,
    )


async def read_value(pool: StatementPool, query: LiteralString, params: Mapping[str, Any]) -> Any:
    """The first column of the first row of one read-only statement (None without a row).

    A connection the server dropped (restart, failover) would otherwise fail one request per idle
    connection: the first failure has the pool test its idle connections, and the read is retried
    once, which is safe because it changes nothing."""
    try:
        return await _read_value_once(pool, query, params)
    except psycopg.OperationalError:
        await pool.check()
        return await _read_value_once(pool, query, params)


async def _read_value_once(pool: StatementPool, query: LiteralString, params: Mapping[str, Any]) -> Any:
    async with pool.connection() as conn:
        row = await (await conn.execute(query, params)).fetchone()
        return None if row is None else row[0]


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commits on success, rolls back on any exception."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


async def database_ready(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
