"""Schemathesis against the running API: no 5xx, every status code is one the OpenAPI document
declares for the operation, and every response body matches the document.

The API runs under uvicorn in a thread of its own (its lifespan, engine and Kafka producer live on that
thread's event loop), like a deployed server. Each run draws a fresh seed, printed (WF_FUZZ_SEED
replays one); hypothesis' health checks are on. `make test` runs a few examples per operation and
mode (~60 s budget); `make test-faults` runs hundreds.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from shared.config import Settings
from tests.conftest import token_for

BUDGET_S = 60.0
EXAMPLES = 8
LONG_EXAMPLES = 200


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    call: Callable[[Any], Any],
    budget_s: float,
    failures: list[str],
    *,
    examples: int,
    run_seed: int,
) -> None:
    """Up to ``examples`` cases of one operation in one mode, within ``budget_s``."""
    started = time.monotonic()

    @hypothesis.seed(run_seed)
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        # too_slow measures the machine (shared with other suites), not the strategies.
        suppress_health_check=[HealthCheck.too_slow],
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
    _run(live_api, settings, examples=int(os.environ.get("WF_FUZZ_EXAMPLES", EXAMPLES)), budget_s=BUDGET_S)


@pytest.mark.faults
def test_no_server_errors_and_responses_match_the_document_long(
    live_api: tuple[str, dict[str, Any]], settings: Settings
) -> None:
    _run(live_api, settings, examples=LONG_EXAMPLES, budget_s=BUDGET_S * 30)


def _run(live_api: tuple[str, dict[str, Any]], settings: Settings, *, examples: int, budget_s: float) -> None:
    base_url, document = live_api
    run_seed = int(os.environ.get("WF_FUZZ_SEED") or random.getrandbits(32))
    sys.stderr.write(
        f"\nschemathesis: seed {run_seed} (WF_FUZZ_SEED={run_seed} to replay), {examples} examples\n"
    )
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
            response,
            checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
            headers=headers,
        )

    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 24
    started = time.monotonic()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(
                operation,
                mode,
                call,
                budget_s / (len(operations) * 2),
                failures,
                examples=examples,
                run_seed=run_seed,
            )
    elapsed = time.monotonic() - started
    assert not failures, f"seed {run_seed}:\n" + "\n\n".join(failures[:10])
    # The run really exercised the API: valid calls succeeded and invalid ones were refused.
    assert statuses[200] >= 10, statuses
    assert statuses[400] >= 10, statuses
    assert sum(statuses.values()) >= 150, statuses
    assert elapsed < budget_s * 2
