from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.config import Settings


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settings.database_url, pool_size=5)
    yield engine
    await engine.dispose()
