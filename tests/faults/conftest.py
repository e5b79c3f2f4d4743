"""Fault tests get their own PostgreSQL and Kafka (``infra`` is overridden here), because they stop
and restart them; every other fixture (``settings``, ``api``, ``local_ca``...) builds on that."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.config import Settings
from tests.faults.infra import start_restartable_infrastructure
from tests.support.infra import Infrastructure


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    infrastructure = start_restartable_infrastructure()
    yield infrastructure
    if not os.environ.get("WF_TEST_KEEP_INFRA"):
        infrastructure.stop()


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    # pre-ping: the tests themselves keep using this engine across PostgreSQL restarts
    engine = create_async_engine(settings.database_url, pool_size=5, pool_pre_ping=True)
    yield engine
    await engine.dispose()
