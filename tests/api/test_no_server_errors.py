"""Hypothesis throws arbitrary JSON, headers, tokens, path parameters and query strings at every
route of the running API: no answer is a 5xx (the contract says bad input is 4xx, never 500).

`make test` runs a bounded number of examples; `make test-faults` runs many more. Each run draws a
fresh seed (printed; set WF_FUZZ_SEED to replay one).
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from shared.config import Settings
from tests.conftest import token_for

FUZZ_DEPARTMENT = 2_000_000_001  # a department of its own: nothing the fuzzer creates is seen elsewhere

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
# Printable ASCII without edge spaces: what an HTTP client can send at all.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(str.strip)
odd_ids = st.sampled_from(["²", "١٢", "2147483648", 2**31, 2**63, -1, 0, "0", "007", " 1", 1.0, True])
path_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=20),
    st.sampled_from(["0", "1", "2147483647", "2147483648", "²", "1e3", "-0", "%2e%2e", "null"]),
)


def _routes(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def _claims_token(config: Settings, claims: dict[str, Any]) -> str:
    assert config.jwt_secret is not None
    now = int(time.time())
    body = {"sub": "fuzz", "iat": now, "exp": now + 600, "aud": config.jwt_audience, "iss": config.jwt_issuer}
    body = {k: v for k, v in body.items() if v is not None}
    body.update(claims)
    return jwt.encode(body, config.jwt_secret.get_secret_value(), algorithm="HS256")


@st.composite
def requests_for(draw: st.DrawFn, routes: list[tuple[str, str]], config: Settings) -> dict[str, Any]:
    method, template = draw(st.sampled_from(routes))
    path = re.sub(r"\{[^}]+\}", lambda _: quote(draw(path_values), safe=""), template)
    authorization = draw(
        st.one_of(
            st.just(f"Bearer {token_for(config, FUZZ_DEPARTMENT)}"),
            st.just(f"Bearer {token_for(config, FUZZ_DEPARTMENT, 'SystemAdmin')}"),
            st.fixed_dictionaries(
                {"department_id": odd_ids | json_values},
                optional={
                    "roles": st.sampled_from([["DepartmentAdmin"], ["SystemAdmin"]]) | json_values,
                    "sub": json_values,
                    "nbf": json_values,
                },
            ).map(lambda claims: f"Bearer {_claims_token(config, claims)}"),
            header_text.map(lambda text: f"Bearer {text}".strip()),
            header_text,
            st.none(),
        )
    )
    headers = draw(
        st.dictionaries(
            st.sampled_from(["Content-Type", "Accept", "If-None-Match", "X-Request-Id", "Range", "X-Fuzz"]),
            header_text,
            max_size=3,
        )
    )
    if authorization is not None:
        headers["Authorization"] = authorization
    kind = draw(st.sampled_from(["json", "json", "bytes", "none"]))
    content: bytes | None = None
    if kind == "json":
        content = json.dumps(draw(json_values)).encode()
        headers.setdefault("Content-Type", "application/json")
    elif kind == "bytes":
        content = draw(st.binary(max_size=200))
    params = draw(
        st.dictionaries(st.sampled_from(["limit", "offset", "status", "since", "q"]), header_text, max_size=2)
    )
    return {"method": method, "url": path, "headers": headers, "content": content, "params": params}


def _fuzz(live_api: tuple[str, dict[str, Any]], config: Settings, examples: int) -> None:
    base_url, document = live_api
    routes = _routes(document)
    assert len(routes) >= 20
    run_seed = int(os.environ.get("WF_FUZZ_SEED") or random.getrandbits(32))
    sys.stderr.write(
        f"\nno-5xx fuzz: seed {run_seed} (WF_FUZZ_SEED={run_seed} to replay), {examples} examples\n"
    )
    server_errors: list[str] = []
    statuses: dict[int, int] = {}

    with httpx.Client(base_url=base_url, timeout=30) as client:

        @seed(run_seed)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(request=requests_for(routes, config))
        def check(request: dict[str, Any]) -> None:
            response = client.request(**request)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                server_errors.append(f"{request} -> {response.status_code} {response.text[:300]}")

        check()
    assert not server_errors, f"seed {run_seed}:\n" + "\n".join(server_errors[:10])
    assert sum(statuses.values()) >= examples, statuses
    assert any(200 <= status < 300 for status in statuses), statuses  # not only refusals


def test_no_route_answers_5xx_to_arbitrary_input(
    live_api: tuple[str, dict[str, Any]], settings: Settings
) -> None:
    _fuzz(live_api, settings, examples=int(os.environ.get("WF_FUZZ_EXAMPLES", "300")))


@pytest.mark.faults
def test_no_route_answers_5xx_to_arbitrary_input_long(
    live_api: tuple[str, dict[str, Any]], settings: Settings
) -> None:
    _fuzz(live_api, settings, examples=5000)
