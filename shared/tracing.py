"""OpenTelemetry traces across API → Kafka → dispatcher → executor → action.

Spans are exported only when WF_OTLP_ENDPOINT is set (OTLP over HTTP); otherwise the API's no-op
tracer is used and costs next to nothing. Trace context crosses Kafka in the W3C `traceparent`
header of each message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject

from shared.config import Settings

_configured = False


def setup_tracing(service: str, settings: Settings) -> None:
    global _configured
    if _configured or not settings.otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = settings.otlp_endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    provider = TracerProvider(resource=Resource.create({"service.name": f"workflows-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer() -> trace.Tracer:
    return trace.get_tracer("workflows")


def kafka_headers(extra: Sequence[tuple[str, bytes]] = ()) -> list[tuple[str, bytes]]:
    """The current trace context as Kafka headers (empty when no span is recording)."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return [*extra, *((k, v.encode()) for k, v in carrier.items())]


def context_from_headers(headers: Iterable[tuple[str, bytes]] | None) -> otel_context.Context:
    carrier = {k: v.decode("latin-1") for k, v in headers or () if k in ("traceparent", "tracestate")}
    return extract(carrier)


def traceparent(headers: Iterable[tuple[str, bytes]] | None) -> bytes | None:
    for key, value in headers or ():
        if key == "traceparent":
            return value
    return None
