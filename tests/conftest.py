"""Session-wide fixtures: real infrastructure, settings, API client and in-process services.

Infrastructure starts lazily: unit tests that request none of these fixtures never start Kafka or
PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.auth import issue_token
from shared.config import Settings
from tests.support.infra import Infrastructure, start_infrastructure, test_settings

_departments = itertools.count(start=1000 + (os.getpid() % 1000) * 1000)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    infrastructure = start_infrastructure()
    yield infrastructure
    if not os.environ.get("WF_TEST_KEEP_INFRA"):
        infrastructure.stop()


@pytest.fixture(scope="session")
def settings(infra: Infrastructure) -> Settings:
    return test_settings(infra)


@pytest.fixture(scope="session")
def secure_settings(infra: Infrastructure, settings: Settings) -> Settings:
    """The settings for the test broker's second listener: SASL_SSL, SCRAM-SHA-512, its test CA."""
    from pydantic import SecretStr

    from tests.support.infra import TEST_RUN_DIR
    from tests.support.kafka_tls import PASSWORD, USER

    if infra.kafka is None or infra.kafka.secure is None:
        pytest.skip("the SASL_SSL listener belongs to the local test broker (WF_KAFKA_BOOTSTRAP is external)")
    return settings.model_copy(
        update={
            "kafka_bootstrap": infra.kafka.secure_bootstrap(),
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": USER,
            "kafka_sasl_password": SecretStr(PASSWORD),
            "kafka_ssl_ca_file": str(TEST_RUN_DIR / "kafka" / "tls" / "ca.pem"),
        }
    )


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The one local CA of the session, trusted through SSL_CERT_FILE (what operators do in production).

    Every suite shares it: a second CA swapped into SSL_CERT_FILE mid-session would break the TLS of
    services that are already running."""
    from tests.peers.tls import make_local_ca

    ca = make_local_ca(Path(tmp_path_factory.mktemp("ca")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(ca.ca_bundle))
        patch.delenv("SSL_CERT_DIR", raising=False)
        yield ca


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A plain engine for tests that arrange or inspect rows directly (pre-ping: the fault tests keep
    using it across PostgreSQL restarts)."""
    engine = create_async_engine(settings.database_url, pool_size=5, pool_pre_ping=True)
    yield engine
    await engine.dispose()


@pytest.fixture
def department_id() -> int:
    """A department of its own for each test, so tests never see each other's data."""
    return next(_departments)


def token_for(settings: Settings, department_id: int, *roles: str, ttl_s: int = 600) -> str:
    return issue_token(
        settings,
        department_id=department_id,
        roles=list(roles or ["DepartmentAdmin"]),
        user_id="test-user",
        ttl_s=ttl_s,
    )


@asynccontextmanager
async def api_instance(
    settings: Settings, department_id: int
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """An API app of its own (its own pools and caches, as another replica's) with a client that is
    DepartmentAdmin of ``department_id``, until the block ends."""
    from services.api.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token_for(settings, department_id)}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api.test", headers=headers
        ) as client:
            yield app, client


@pytest.fixture(scope="session")
async def api_app(settings: Settings) -> AsyncIterator[object]:
    from services.api.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(api_app: object, settings: Settings, department_id: int) -> AsyncIterator[httpx.AsyncClient]:
    """An API client authenticated as DepartmentAdmin of this test's department."""
    transport = httpx.ASGITransport(app=api_app)  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {token_for(settings, department_id)}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test", headers=headers) as client:
        yield client


@pytest.fixture
async def anonymous_api(api_app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


@pytest.fixture(scope="session")
async def services(settings: Settings, local_ca: object) -> AsyncIterator[dict[str, object]]:
    """The dispatcher, executor and health services, running for the whole session."""
    from tests.support.services import running_services

    async with running_services(settings) as started:
        yield started
