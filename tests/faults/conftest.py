"""Fault tests get their own PostgreSQL and Kafka (``infra`` is overridden here), because they stop
and restart them; every other fixture (``settings``, ``api``, ``local_ca``...) builds on that."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.faults.infra import start_restartable_infrastructure
from tests.support.infra import Infrastructure


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    infrastructure = start_restartable_infrastructure()
    yield infrastructure
    if not os.environ.get("WF_TEST_KEEP_INFRA"):
        infrastructure.stop()
