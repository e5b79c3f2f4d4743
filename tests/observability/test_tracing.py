"""One trace follows an event from the API through Kafka, the dispatcher and the executor to the action."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.peers.https_server import HttpsPeer
from tests.support.helpers import wait_for, workflow_with_http_step


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    # The process-wide provider can be set once; the services' no-op tracers pick it up from now on.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


async def test_one_trace_from_api_to_action(api: httpx.AsyncClient, services, local_ca, department_id, spans):
    async with HttpsPeer(local_ca, hostnames=["127.0.0.1"]) as receiver:
        workflow_id, _ = await workflow_with_http_step(
            api,
            receiver.url("/notes", host="127.0.0.1"),
            template='{"note": "{{ note.title }}"}',
            name="Traced",
            trigger=9,
        )
        index = services["dispatcher"].index

        async def indexed():
            return workflow_id in index.match(department_id, 9)

        await wait_for(indexed, timeout=10)
        published = await api.post(
            "/api/v4/workflows/events",
            json={"EventType": "NoteAdded", "Payload": {"note": {"title": "Hydrant out of service"}}},
        )
        assert published.status_code == 202, published.text

        async def delivered():
            return receiver.requests_to("POST", "/notes")

        request = (await wait_for(delivered))[0]

    async def step_span():
        return [
            s
            for s in spans.get_finished_spans()
            if s.name == "step CallApiPost" and s.attributes.get("workflows.run_id") is not None
        ]

    await wait_for(step_span, timeout=10)
    trace_id = (await step_span())[-1].context.trace_id

    async def trace() -> dict[str, Any]:
        # The run's span ends after the step's (once the run is settled), so wait for the whole chain.
        names = {s.name: s for s in spans.get_finished_spans() if s.context.trace_id == trace_id}
        return names if {"event.publish", "dispatch", "run.execute", "step CallApiPost"} <= set(names) else {}

    finished = await wait_for(trace, timeout=10)
    by_id = {s.context.span_id: s for s in finished.values()}
    chain = []
    span = finished["step CallApiPost"]
    while span is not None:
        chain.append(span.name)
        span = by_id.get(span.parent.span_id) if span.parent else None
    # (FastAPI adds its own request spans above event.publish)
    assert chain[:4] == ["step CallApiPost", "run.execute", "dispatch", "event.publish"]
    assert finished["event.publish"].attributes["workflows.department_id"] == department_id
    # the HTTP call itself carries the run's idempotency key, not the trace: receivers need no OTel
    assert request.headers["idempotency-key"].startswith("wf-run-")
