"""The OpenAPI document as the API really behaves: invalid input is 400 with the one error shape, never 422.
Short operationIds (createWorkflow, listRuns) so generated clients read naturally, and Swagger UI at
/docs from assets packaged with the service (swagger-ui-py's static files): no CDN, so it works in a
cluster without internet access."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

# Route functions whose names are not "verb + noun" get one here; the rest are camelCased as they are.
_OPERATION_NAMES = {
    "event_types": "listEventTypes",
    "run_logs": "getRunLogs",
    "workflow_health": "getWorkflowHealth",
    "run_workflow_test": "testWorkflow",
}
DOCS_ASSETS = "/docs/assets"


def operation_id(route: APIRoute) -> str:
    """The route function's name in camelCase: create_workflow -> createWorkflow."""
    if route.name in _OPERATION_NAMES:
        return _OPERATION_NAMES[route.name]
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def install_swagger_ui(app: FastAPI) -> None:
    """/docs with Swagger UI's files served by the API itself (create the app with docs_url=None)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(files("swagger_ui") / "static")), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                servers=app.servers,
            )
            for path_item in document.get("paths", {}).values():
                for operation in path_item.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = document.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
