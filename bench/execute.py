"""`execute`: runs of one CallApiPost step, from the run topic to the sink's acknowledgement with the
step's log stored and the run Completed.

Each repetition stores its runs directly (one ``INSERT ... SELECT generate_series``) and produces their
run messages to a topic of its own; then a real ``python -m services.executor`` process drains them.
Its span is first ``started_on`` to last ``completed_on``; its CPU time per run is read from
``/proc`` (``bench.cpu``). Two baselines bound it from above, measured in the same repetition:

- the **bare pipeline** (``bench.baselines pipeline``): runs of their own, stored the same way, taken
  from a run topic of their own with the executor's concurrency: one claim statement per batch, the
  bodies POSTed with aiohttp, logs + ledger + settlements in one statement, outcomes produced, offsets
  committed; ``ratio`` = executor ÷ this;
- the **raw HTTP limit**: ``wrk -t1 -c64`` POSTing the same body to the same sink over TLS keep-alive
  (``http_limit_per_s``): what this machine's HTTP path allows at all.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text

from bench.cpu import CpuMeter
from bench.harness import (
    RUN_DIR,
    PairedFigures,
    bench_process,
    median,
    say,
    service,
    settings_env_plain,
    wait_until,
)
from bench.stack import BenchStack
from bench.workload import CALL_NAME, body_for
from shared.config import Settings
from shared.runs.sql import COMPLETED, FAILED, RETRYING

INSERT_RUNS = text(
    """
    INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, attempt_number,
                               is_test, input_payload, occurred_on, queued_on, published_on)
    SELECT w.workflow_id, w.department_id, 0, w.trigger_event_type, :tag || '-' || g, 1, false,
           jsonb_build_object('call', jsonb_build_object('id', g, 'name', CAST(:call AS text), 'priority', 3),
                              'bench', jsonb_build_object('sent', 0)),
           now(), now(), now()
    FROM generate_series(0, CAST(:n AS int) - 1) g
    JOIN (SELECT workflow_id, department_id, trigger_event_type,
                 row_number() OVER (ORDER BY workflow_id) - 1 AS k
          FROM workflows WHERE department_id BETWEEN 1 AND CAST(:departments AS int)) w
      ON w.k = g % (CAST(:departments AS int) * 3)
    RETURNING workflow_run_id, department_id
    """
)

SPAN = text(
    f"SELECT count(*) FILTER (WHERE status = {COMPLETED}), count(*) FILTER (WHERE status IN ({FAILED}, {RETRYING})), "
    "extract(epoch FROM max(completed_on) - min(started_on)), "
    "(SELECT count(*) FROM workflow_run_logs l JOIN workflow_runs r USING (workflow_run_id) "
    f" WHERE r.event_id LIKE :p AND l.status = {COMPLETED}) "
    "FROM workflow_runs WHERE event_id LIKE :p"
)


async def store_runs(stack: BenchStack, settings: Settings, tag: str, runs: int, departments: int) -> None:
    async with stack.engine.begin() as conn:
        rows = (
            await conn.execute(
                INSERT_RUNS, {"tag": tag, "n": runs, "call": CALL_NAME, "departments": departments}
            )
        ).all()
    await stack.create_topics(settings)
    await stack.produce(
        settings.topic_runs,
        (
            (str(dep).encode(), orjson.dumps({"RunId": run_id, "DepartmentId": dep, "AttemptNumber": 1}))
            for run_id, dep in rows
        ),
    )


async def run_executor(stack: BenchStack, settings: Settings, tag: str, runs: int) -> tuple[float, float]:
    """Runs per second and the executor's CPU ms per run."""
    await stack.sink_reset()
    process = service("executor", settings, **stack.env()).start()
    meter = CpuMeter({"executor": (process.pid, False)})
    meter.start()
    try:

        async def all_received() -> bool:
            return int((await stack.sink_stats())["count"]) >= runs

        await wait_until(all_received, timeout=600, what=f"executing {runs} runs", watch=[process])
        row = None

        async def all_settled() -> bool:
            nonlocal row
            async with stack.engine.connect() as conn:
                row = (await conn.execute(SPAN, {"p": f"{tag}-%"})).one()
            return bool(row[0] + row[1] >= runs)

        await wait_until(all_settled, timeout=60, what="runs settled", watch=[process], interval=1.0)
        meter.stop()  # includes its start-up (imports, connections), as the pipeline's figure does
    finally:
        process.stop()
    assert row is not None
    completed, failed, seconds, logs = row
    if failed or completed != runs or logs != runs:
        raise RuntimeError(
            f"execute {tag}: {completed} completed, {failed} failed, {logs} logs of {runs}; "
            f"see {process.log_path}"
        )
    return float(completed) / float(seconds), meter.per_item_ms(runs)["executor"]


async def run_pipeline(stack: BenchStack, settings: Settings, runs: int) -> tuple[float, float]:
    """The bare pipeline over runs stored for it: runs per second and its CPU ms per run."""
    process = bench_process(
        "baseline-pipeline",
        "bench.baselines",
        "pipeline",
        "--database",
        stack.infra.database_url.replace("+psycopg", ""),
        "--bootstrap",
        settings.kafka_bootstrap,
        "--topic",
        settings.topic_runs,
        "--out-topic",
        settings.topic_results,
        "--url",
        stack.sink_url,
        "--events",
        str(runs),
        "--concurrency",
        str(settings.executor_concurrency),
        env={**settings_env_plain(), **stack.env()},
    ).start()
    result = await process.result(timeout=600)
    if result["failures"]:
        raise RuntimeError(f"bare pipeline: {result['failures']} failed requests")
    return float(result["per_s"]), round(1000 * float(result["cpu_s"]) / runs, 3)


async def http_limit(stack: BenchStack, seconds: int = 4, connections: int = 64) -> float:
    """``wrk -t1 -c64`` POSTing the runs' body to the sink over TLS keep-alive: requests per second."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (make bench installs it: apt-get install wrk)")
    script = RUN_DIR / "wrk-post.lua"
    body = body_for(1).replace("'", "\\'")
    script.write_text(
        f"wrk.method = 'POST'\nwrk.body = '{body}'\nwrk.headers['Content-Type'] = 'application/json'\n"
    )
    proc = await asyncio.create_subprocess_exec(
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "-s",
        str(script),
        stack.sink_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await proc.communicate())[0].decode(errors="replace")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if proc.returncode != 0 or found is None or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed: {out[-800:]}")
    return float(found.group(1))


@dataclass
class ExecuteFigures(PairedFigures):
    """Executor vs the bare pipeline (the ratio), plus the raw HTTP limit and CPU per run."""

    http_limit_per_s: list[float] = field(default_factory=list)
    executor_cpu_ms: list[float] = field(default_factory=list)
    pipeline_cpu_ms: list[float] = field(default_factory=list)

    def extra_json(self) -> dict[str, Any]:
        return {
            "baseline": "bare pipeline (bench.baselines pipeline)",
            "http_limit_per_s": round(median(self.http_limit_per_s), 1),
            "http_limit_repetitions": [round(v, 1) for v in self.http_limit_per_s],
            "cpu_ms_per_run": round(median(self.executor_cpu_ms), 3),
            "cpu_ms_per_run_repetitions": self.executor_cpu_ms,
            "baseline_cpu_ms_per_run": round(median(self.pipeline_cpu_ms), 3),
            "baseline_cpu_ms_per_run_repetitions": self.pipeline_cpu_ms,
        }


async def one_repetition(
    stack: BenchStack, tag: str, runs: int, departments: int, *, baseline_first: bool
) -> tuple[float, float, float, float, float]:
    """(executor runs/s, bare pipeline runs/s, wrk requests/s, executor CPU ms/run, pipeline CPU ms/run)."""
    settings = stack.isolated(tag)
    bare = stack.isolated(f"bare-{tag}")
    await store_runs(stack, settings, tag, runs, departments)
    await store_runs(stack, bare, f"bare-{tag}", runs, departments)
    if baseline_first:
        base, base_cpu = await run_pipeline(stack, bare, runs)
        limit = await http_limit(stack)
    served, cpu = await run_executor(stack, settings, tag, runs)
    if not baseline_first:
        limit = await http_limit(stack)
        base, base_cpu = await run_pipeline(stack, bare, runs)
    return served, base, limit, cpu, base_cpu


async def measure(
    stack: BenchStack, departments: int, *, runs: int, repetitions: int, warmup: int
) -> ExecuteFigures:
    say(f"execute: warm-up with {warmup} runs")
    await one_repetition(stack, "execute-warm", warmup, departments, baseline_first=True)
    figures = ExecuteFigures()
    for rep in range(repetitions):
        served, base, limit, cpu, base_cpu = await one_repetition(
            stack, f"execute-{rep}", runs, departments, baseline_first=rep % 2 == 1
        )
        figures.service_per_s.append(served)
        figures.baseline_per_s.append(base)
        figures.http_limit_per_s.append(limit)
        figures.executor_cpu_ms.append(cpu)
        figures.pipeline_cpu_ms.append(base_cpu)
        say(
            f"execute: repetition {rep + 1}/{repetitions}: {served:,.0f} runs/s ({cpu:.2f} ms CPU/run), "
            f"bare pipeline {base:,.0f}/s ({base_cpu:.2f} ms CPU/run), wrk {limit:,.0f} requests/s"
        )
    return figures
