"""The Workflows API (FastAPI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.api.admin.endpoints import router as admin_router
from services.api.credentials.endpoints import router as credentials_router
from services.api.errors import install_error_handlers
from services.api.events.endpoints import router as events_router
from services.api.eventtypes.endpoints import router as eventtypes_router
from services.api.health.endpoints import router as health_router
from services.api.middleware import LimitsAndMetrics
from services.api.openapi import install_openapi, install_swagger_ui, operation_id
from services.api.runs.endpoints import router as runs_router
from services.api.state import ApiState
from services.api.workflows.endpoints import collection_router as workflows_collection_router
from services.api.workflows.endpoints import router as workflows_router
from services.api.workflows.fast_list import FastWorkflowList
from services.api.workflows.lists import WorkflowLists
from shared.auth import TokenVerifier
from shared.config import Settings
from shared.db.engine import create_engine, create_sessionmaker, create_statement_pool, database_ready
from shared.kafka.clients import create_producer, kafka_reachable
from shared.kafka.connection import KafkaStatus, wait_for_kafka
from shared.kafka.topics import ensure_topics
from shared.keys import keyring_from
from shared.sidecar import SideServer, check_response


async def readiness(state: ApiState) -> dict[str, bool]:
    """Dependencies answer: the API can serve now (the readiness probe, /healthz)."""
    return {
        "database": await database_ready(state.engine),
        "kafka": await kafka_reachable(state.producer),
    }


def create_app(settings: Settings, *, metrics_port: int | None = None) -> FastAPI:
    """``metrics_port``: also serve /livez, /readyz and /metrics there (`python -m services.api`
    does; in-process tests leave it off)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.require_infrastructure()
        engine = create_engine(settings)
        await wait_for_kafka(settings, KafkaStatus())  # logs why the cluster cannot be used, until it can
        if settings.kafka_create_topics:
            await ensure_topics(settings)
        producer = create_producer(settings)
        await producer.start()
        reads = create_statement_pool(settings, name="reads")
        await reads.open()  # connects in the background; a read waits for its connection
        app.state.api = ApiState(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            reads=reads,
            lists=WorkflowLists(reads),
            producer=producer,
            verifier=TokenVerifier(settings),
            keyring=keyring_from(settings),
        )
        side: SideServer | None = None
        if metrics_port is not None:

            async def ready() -> dict[str, bool]:
                return await readiness(app.state.api)

            side = SideServer(ready, settings.metrics_host, metrics_port)
            await side.start()
        try:
            yield
        finally:
            if side is not None:
                await side.stop()
            await reads.close()
            await producer.stop()
            await engine.dispose()

    app = FastAPI(
        title="Workflows API",
        version="4.0",
        description="Event-driven automation for emergency-services departments. "
        "Every /api/v4 endpoint needs `Authorization: Bearer <JWT>`.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # Swagger UI from packaged assets (install_swagger_ui); ReDoc would load from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_openapi(app)
    install_swagger_ui(app)
    app.include_router(workflows_collection_router)
    # Fixed paths (/credentials, /runs, /eventtypes, /events) before /{workflow_id}, which would match them too.
    app.include_router(events_router)
    app.include_router(eventtypes_router)
    app.include_router(credentials_router)
    app.include_router(runs_router)
    app.include_router(health_router)
    app.include_router(workflows_router)
    app.include_router(admin_router)

    # Inside the size limit and metrics (the last added is outermost).
    app.add_middleware(FastWorkflowList)
    app.add_middleware(LimitsAndMetrics)

    # /healthz stays on the public port for load balancers and people; /metrics is only on the
    # metrics port (WF_API_METRICS_PORT), with the probes.
    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        return check_response(await readiness(request.app.state.api))

    return app
