"""Schemathesis against the running API: no 5xx, and every response matches the OpenAPI document.

The API runs under uvicorn in a thread of its own (its lifespan, engine and Kafka producer live on that
thread's event loop), like a deployed server. Bounded: a few examples per operation and mode, ~60 s.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.api.app import create_app
from services.dispatcher.service import DispatcherService
from shared.config import Settings
from tests.conftest import token_for
from tests.support.helpers import isolated
from wf.procs import free_port

BUDGET_S = 60.0
EXAMPLES = 8


@contextmanager
def dispatcher_thread(settings: Settings) -> Iterator[None]:
    """A dispatcher on a thread (and event loop) of its own: a test run is created by the dispatcher
    from the API's test event, and this test's own loop is blocked while it runs."""
    stop = threading.Event()
    started = threading.Event()

    async def serve() -> None:
        service = DispatcherService(settings, side_port=free_port())
        await service.start()
        started.set()
        try:
            while not stop.is_set():
                await asyncio.sleep(0.1)
        finally:
            await service.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="fuzz-dispatcher", daemon=True)
    thread.start()
    assert started.wait(60), "the dispatcher did not start"
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def live_api(settings: Settings) -> Iterator[tuple[str, dict[str, Any]]]:
    # Topics of its own, served by a dispatcher of its own. The fuzzer may hit /test on a workflow it
    # created: don't wait 30 s for an executor (the run is returned as it stands).
    settings = isolated(settings, test_wait_s=0.5)
    stack = ExitStack()
    stack.enter_context(dispatcher_thread(settings))
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="fuzzed-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the API did not start"
        assert time.monotonic() < deadline, "the API did not start in 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app.openapi()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        stack.close()


def _fuzz(
    operation: Any, mode: GenerationMode, call: Callable[[Any], Any], budget_s: float, failures: list[str]
) -> None:
    """Up to EXAMPLES cases of one operation in one mode, within ``budget_s``."""
    started = time.monotonic()

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        if time.monotonic() - started > budget_s:
            return  # this operation's share of the time budget is spent
        try:
            call(case)
        except Exception as exc:
            failures.append(f"{case.method} {case.formatted_path} ({mode}): {str(exc)[:600]}")

    check()


def test_no_server_errors_and_responses_match_the_document(
    live_api: tuple[str, dict[str, Any]], settings: Settings
) -> None:
    base_url, document = live_api
    schema = schemathesis.openapi.from_dict(document)
    # A department of its own; DepartmentAdmin only, so the fuzzer cannot change other tests' plans.
    headers = {"Authorization": f"Bearer {token_for(settings, 2_000_000_000)}"}
    session = requests.Session()
    failures: list[str] = []
    statuses: Counter[int] = Counter()

    def call(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        statuses[response.status_code] += 1
        case.validate_response(
            response, checks=[not_a_server_error, response_schema_conformance], headers=headers
        )

    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 24
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, call, BUDGET_S / (len(operations) * 2), failures)
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures[:10])
    # The run really exercised the API: valid calls succeeded and invalid ones were refused.
    assert statuses[200] >= 10, statuses
    assert statuses[400] >= 10, statuses
    assert sum(statuses.values()) >= 150, statuses
    assert elapsed < BUDGET_S * 2
