"""One render budget per step, enforced off the event loop: the review's attack inputs end within the
budget (as a failed step, or quickly now that the filters are linear) while another department's run
keeps flowing, and its latency during the attack is measured."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest

from shared.enums import ActionType, RunStatus
from shared.templating.budget import STEP_RENDER_BUDGET_S
from tests.executor.conftest import SAMPLE_CALL, Pipeline, http_step
from tests.peers.https_server import HttpsPeer

log = logging.getLogger(__name__)

# CPU work that checks the deadline only between filter calls: 500 x 2 replaces over 1 MB.
BURN = "{% for i in (1..500) %}{{ call.blob | replace: 'a', 'b' | replace: 'b', 'c' | size }}{% endfor %}"
ATTACKS: dict[str, tuple[str, dict[str, str], dict[str, Any], str | None]] = {
    # name: (body template, headers, payload additions, error the step fails with, None: completes)
    "strip_html": (
        "{{ call.notes | strip_html | size }}",
        {},
        {"notes": ">" + "<a b='" * 16_000},  # 96 KB: 20.6 s in python-liquid's HTMLParser
        None,
    ),
    "uniq": ("{{ call.units | uniq | size }}", {}, {"units": list(range(40_000))}, None),  # was 7.4 s
    "burn_body_and_headers": (
        BURN,
        {f"X-Burn-{n}": BURN for n in range(10)},  # each had its own 2 s budget: 22 s in all
        {"blob": "a" * 1_000_000},
        "Template exceeded the render time limit of 2 seconds",
    ),
    "373_headers": (
        "{{ call.name }}",
        {f"X-H-{n}": "{{ call.notes | strip_html }}" for n in range(373)},
        {"notes": "x"},
        "at most 50 headers",
    ),
}


async def _attack_and_healthy_workflows(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int, attack: str
) -> tuple[int, int, dict[str, Any]]:
    """A workflow whose step carries the attack, a healthy one already warmed up (its first run pays
    for connections and caches), and the attack's event payload."""
    template, headers, extra, _ = ATTACKS[attack]
    bomb_workflow, _ = await pipeline.workflow(api, name="Attack")
    # Written directly: the API refuses more than 50 headers, but an old row must not hurt either.
    await pipeline.insert_step(
        bomb_workflow,
        action_type=int(ActionType.CallApiPost),
        step_order=1,
        template=template,
        config={"url": https_peer.url("/attack", host="127.0.0.1"), "headers": headers},
    )
    healthy_workflow, _ = await pipeline.workflow(api, http_step(https_peer, "/healthy", order=1), name="Ok")
    await pipeline.wait_status(await pipeline.start_run(healthy_workflow, department_id))
    return bomb_workflow, healthy_workflow, {**SAMPLE_CALL, "call": {**SAMPLE_CALL["call"], **extra}}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_an_attack_template_ends_within_the_budget_while_other_runs_flow(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int, attack: str
) -> None:
    error = ATTACKS[attack][3]
    bomb_workflow, healthy_workflow, payload = await _attack_and_healthy_workflows(
        api, pipeline, https_peer, department_id, attack
    )
    started = time.monotonic()
    bomb_run = await pipeline.start_run(bomb_workflow, department_id, payload)
    latencies = []
    # Healthy runs one after another while the attack renders: each must still finish promptly.
    while time.monotonic() - started < STEP_RENDER_BUDGET_S + 0.5:
        begun = time.monotonic()
        await pipeline.wait_status(await pipeline.start_run(healthy_workflow, department_id))
        latencies.append(time.monotonic() - begun)
    bombed = await pipeline.wait_status(bomb_run)
    log.info(f"{attack}: healthy run latencies during the attack {[round(x, 3) for x in latencies]}")

    assert bombed["completed_on"] is not None
    took = (bombed["completed_on"] - bombed["started_on"]).total_seconds()
    assert took < STEP_RENDER_BUDGET_S + 1.5, took
    if error is None:
        assert bombed["status"] == RunStatus.Completed, bombed["error_message"]
    else:
        assert bombed["status"] == RunStatus.Failed
        assert error in bombed["error_message"], bombed["error_message"]
        assert https_peer.requests_to("POST", "/attack") == []
    assert max(latencies) < 1.5, latencies


@pytest.mark.faults
async def test_many_concurrent_attacks_leave_other_runs_flowing(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    """Twenty burning steps at once (each CPU-bound until its budget ends): every one fails within
    its budget plus its share of the CPU, and other runs keep finishing meanwhile."""
    bomb_workflow, healthy_workflow, payload = await _attack_and_healthy_workflows(
        api, pipeline, https_peer, department_id, "burn_body_and_headers"
    )

    started = time.monotonic()
    bombs = await asyncio.gather(
        *[pipeline.start_run(bomb_workflow, department_id, payload) for _ in range(20)]
    )
    log.info(f"20 attack runs started in {time.monotonic() - started:.2f} s")
    latencies = []
    while len(latencies) < 10 or time.monotonic() - started < 6:
        begun = time.monotonic()
        await pipeline.wait_status(await pipeline.start_run(healthy_workflow, department_id))
        latencies.append(time.monotonic() - begun)
    finished = [await pipeline.wait_status(run, timeout=60) for run in bombs]
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    log.info(
        f"20 concurrent attacks: {len(latencies)} healthy runs, latency p50 "
        f"{latencies[len(latencies) // 2]:.3f} s, p95 {p95:.3f} s, max {latencies[-1]:.3f} s"
    )
    assert all(row["status"] == RunStatus.Failed for row in finished)
    assert all("render time limit" in row["error_message"] for row in finished)
    assert https_peer.requests_to("POST", "/attack") == []
    assert p95 < 2.0, latencies
