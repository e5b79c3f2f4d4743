"""`api`: ``GET /api/v4/workflows`` for a department with 28 workflows, on the real API process
(``python -m services.api``: uvicorn, JWT check, database query, response model), against a bare
FastAPI route returning the same JSON from memory, served by uvicorn the same way. The load comes
from ``bench.loadgen`` (aiohttp, 16 connections), alternating between the two servers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bench.cpu import CpuMeter
from bench.harness import (
    RUN_DIR,
    PairedFigures,
    Process,
    bench_process,
    say,
    service,
    settings_env_plain,
    wait_port,
)
from bench.stack import BenchStack
from bench.workload import seed_departments
from shared.auth import issue_token
from wf.procs import free_port

API_DEPARTMENT = 100_001
CONCURRENCY = 16


@dataclass
class ApiServer:
    process: Process
    port: int
    token: str

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@asynccontextmanager
async def running_api(stack: BenchStack) -> AsyncIterator[ApiServer]:
    port = free_port()
    process = service("api", stack.settings, WF_API_PORT=str(port)).start()
    try:
        await wait_port(port, process)
        token = issue_token(
            stack.settings,
            department_id=API_DEPARTMENT,
            roles=["DepartmentAdmin"],
            user_id="bench",
            ttl_s=3600,
        )
        yield ApiServer(process, port, token)
    finally:
        process.stop()


WARMUP_S = 1.0


async def load(url: str, token: str | None, seconds: float, concurrency: int = CONCURRENCY) -> dict[str, Any]:
    args = [
        "--url",
        url,
        "--concurrency",
        str(concurrency),
        "--seconds",
        str(seconds),
        "--warmup",
        str(WARMUP_S),
    ]
    if token:
        args += ["--token", token]
    process = bench_process("loadgen", "bench.loadgen", *args).start()
    result = await process.result(timeout=seconds + 60)
    if result["errors"]:
        raise RuntimeError(f"loadgen against {url}: {result['errors']} non-200 replies")
    return result


async def measure(
    stack: BenchStack, server: ApiServer, *, repetitions: int, seconds: float
) -> dict[str, Any]:
    await seed_departments(
        stack.engine,
        first=API_DEPARTMENT,
        departments=1,
        sink_url=stack.sink_url,
        workflows_per_department=28,
    )
    url = server.url("/api/v4/workflows")
    async with httpx.AsyncClient() as client:
        reply = await client.get(url, headers={"Authorization": f"Bearer {server.token}"})
    reply.raise_for_status()
    if len(reply.json()) != 28:
        raise RuntimeError(f"expected 28 workflows, the API listed {len(reply.json())}")
    body = RUN_DIR / "api-workflows.json"
    body.write_bytes(reply.content)
    port = free_port()
    baseline = bench_process(
        "baseline-api",
        "bench.baselines",
        "api",
        "--port",
        str(port),
        "--json",
        str(body),
        env=settings_env_plain(),
    ).start()
    figures = PairedFigures()
    # CPU per request of the API process and of PostgreSQL (postmaster and backends) during the API's
    # repetitions, and of the bare route's process during its own; the warm-up's requests are counted
    # at the measured rate.
    pids = {"api": (server.process.pid, False)}
    if "postgres" in stack.infra_pids():
        pids["postgres"] = stack.infra_pids()["postgres"]
    cpu_ms: dict[str, list[float]] = {name: [] for name in [*pids, "baseline"]}
    try:
        await wait_port(port, baseline)
        bare_url = f"http://127.0.0.1:{port}/api/v4/workflows"
        for rep in range(repetitions):
            order = [(url, server.token, figures.service_per_s), (bare_url, None, figures.baseline_per_s)]
            for target, token, into in order if rep % 2 == 0 else reversed(order):
                meter = CpuMeter(pids if target == url else {"baseline": (baseline.pid, False)})
                meter.start()
                rate = float((await load(target, token, seconds))["requests_per_s"])
                spent = meter.stop()
                into.append(rate)
                for name, cpu_s in spent.items():
                    cpu_ms[name].append(round(1000 * cpu_s / (rate * (seconds + WARMUP_S)), 3))
            say(
                f"api: repetition {rep + 1}/{repetitions}: {figures.service_per_s[-1]:,.0f} req/s, "
                f"baseline {figures.baseline_per_s[-1]:,.0f}/s; CPU ms per request "
                + ", ".join(f"{name} {values[-1]}" for name, values in cpu_ms.items())
            )
    finally:
        baseline.stop()
    return {
        **figures.as_json("requests_per_s", "baseline_requests_per_s"),
        "workflows": 28,
        "concurrency": CONCURRENCY,
        "cpu_ms_per_request": {name: sorted(values)[len(values) // 2] for name, values in cpu_ms.items()},
        "cpu_ms_per_request_repetitions": cpu_ms,
    }
