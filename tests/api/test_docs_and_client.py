"""/docs works without internet (Swagger UI served by the API), every operation has a short
operationId, and a client generated from /openapi.json by openapi-python-client drives a
create -> step -> test run -> logs round trip against the real API, executor and HTTPS peer."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.openapi import DOCS_ASSETS
from tests.conftest import token_for
from tests.peers.https_server import HttpsPeer
from tests.peers.tls import LocalCA

CAMEL = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)*")


async def test_docs_load_swagger_ui_from_the_service_itself(anonymous_api: httpx.AsyncClient) -> None:
    page = await anonymous_api.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    sources += re.findall(r"""url: *["']([^"']+)["']""", page.text)
    assert sources
    for source in sources:
        # Same origin only: a cluster without internet would show a blank page otherwise.
        assert source.startswith("/"), source
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"{DOCS_ASSETS}/{asset}" in sources
        answer = await anonymous_api.get(f"{DOCS_ASSETS}/{asset}")
        assert answer.status_code == 200, asset
        assert len(answer.content) > 50_000, asset  # the real bundle, not a stub
    # Swagger UI 5 (OpenAPI 3.1, which FastAPI emits).
    bundle = (await anonymous_api.get(f"{DOCS_ASSETS}/swagger-ui-bundle.js")).text
    assert "3.1" in bundle
    assert (await anonymous_api.get("/redoc")).status_code == 404  # ReDoc would need a CDN


async def test_every_operation_has_a_short_camel_case_operation_id(anonymous_api: httpx.AsyncClient) -> None:
    document = (await anonymous_api.get("/openapi.json")).json()
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for operation_id in ids:
        assert CAMEL.fullmatch(operation_id), operation_id
        assert "api" not in operation_id.lower(), operation_id
        assert len(operation_id) <= 30, operation_id
    assert {"createWorkflow", "listRuns", "addStep", "testWorkflow", "getRunLogs"} <= set(ids)


@pytest.fixture(scope="module")
def generated_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`openapi-python-client generate` on the API's document, imported as a package."""
    from services.api.app import create_app
    from shared.config import Settings

    root = tmp_path_factory.mktemp("generated")
    spec = root / "openapi.json"
    spec.write_text(json.dumps(create_app(Settings(_env_file=None)).openapi()))
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator, "openapi-python-client is a dev dependency (pip install -e '.[dev]')"
    result = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(root / "wfclient"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("wfclient")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "wfclient" or m.startswith("wfclient.")]:
            del sys.modules[name]


async def test_a_generated_client_drives_create_step_test_run_and_logs(
    generated_client: Any,
    api_app: object,
    settings: Any,
    department_id: int,
    services: dict[str, object],
    local_ca: LocalCA,
) -> None:
    create_workflow = importlib.import_module("wfclient.api.workflows.create_workflow")
    add_step = importlib.import_module("wfclient.api.workflows.add_step")
    test_workflow = importlib.import_module("wfclient.api.runs.test_workflow")
    get_run_logs = importlib.import_module("wfclient.api.runs.get_run_logs")
    models = importlib.import_module("wfclient.models")

    client = generated_client.AuthenticatedClient(
        base_url="http://api.test", token=token_for(settings, department_id)
    )
    transport = httpx.ASGITransport(app=api_app)  # type: ignore[arg-type]
    client.set_async_httpx_client(
        httpx.AsyncClient(
            transport=transport,
            base_url="http://api.test",
            headers={"Authorization": f"Bearer {client.token}"},
            timeout=60,
        )
    )
    async with HttpsPeer(local_ca, hostnames=["127.0.0.1", "localhost"]) as receiver:
        workflow = await create_workflow.asyncio(
            client=client, body=models.WorkflowInput(name="Generated client", trigger_event_type=3)
        )
        assert isinstance(workflow, models.WorkflowResult), workflow
        step = await add_step.asyncio(
            workflow.workflow_id,
            client=client,
            body=models.WorkflowStepInput(
                action_type=3,
                step_order=1,
                output_template='{"unit": "{{ unit.name }}"}',
                action_config=json.dumps({"url": receiver.url("/units", host="127.0.0.1")}),
            ),
        )
        assert isinstance(step, models.WorkflowStepResult), step
        # The sample payload of the trigger event type (an empty WorkflowTestInput).
        run = await test_workflow.asyncio(
            workflow.workflow_id, client=client, body=models.WorkflowTestInput()
        )
        assert isinstance(run, models.WorkflowTestRunResult), run
        assert (run.status, run.is_test, run.workflow_id) == (2, True, workflow.workflow_id)
        logs = await get_run_logs.asyncio(run.workflow_run_id, client=client)
        assert isinstance(logs, list)
        assert [(log.workflow_step_id, log.status) for log in logs] == [(step.workflow_step_id, 2)]
        assert json.loads(logs[0].rendered_output)["unit"]
        assert len(receiver.requests_to("POST", "/units")) == 1
