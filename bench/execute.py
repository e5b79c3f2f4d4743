"""`execute`: runs of one CallApiPost step, from the run topic to the sink's acknowledgement with the
step's log stored and the run Completed.

Each repetition stores its runs directly (one ``INSERT ... SELECT generate_series``) and produces their
run messages to a topic of its own; then a real ``python -m services.executor`` process drains them.
Its span is first ``started_on`` to last ``completed_on``. The baseline (``bench.baselines http``)
POSTs the very bodies those runs render to the same sink with the executor's concurrency.
"""

from __future__ import annotations

import orjson
from sqlalchemy import text

from bench.harness import PairedFigures, bench_process, say, service, settings_env_plain, wait_until
from bench.stack import BenchStack
from bench.workload import CALL_NAME
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


async def run_executor(stack: BenchStack, settings: Settings, tag: str, runs: int) -> float:
    await stack.sink_reset()
    process = service("executor", settings, **stack.env()).start()
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
    finally:
        process.stop()
    assert row is not None
    completed, failed, seconds, logs = row
    if failed or completed != runs or logs != runs:
        raise RuntimeError(
            f"execute {tag}: {completed} completed, {failed} failed, {logs} logs of {runs}; "
            f"see {process.log_path}"
        )
    return float(completed) / float(seconds)


async def run_baseline(stack: BenchStack, tag: str, runs: int, concurrency: int) -> float:
    process = bench_process(
        f"baseline-http-{tag}",
        "bench.baselines",
        "http",
        "--url",
        stack.sink_url,
        "--events",
        str(runs),
        "--concurrency",
        str(concurrency),
        env={**settings_env_plain(), **stack.env()},
    ).start()
    result = await process.result(timeout=600)
    if result["failures"]:
        raise RuntimeError(f"baseline http: {result['failures']} failed requests")
    return float(result["per_s"])


async def one_repetition(
    stack: BenchStack, tag: str, runs: int, departments: int, *, baseline_first: bool
) -> tuple[float, float]:
    settings = stack.isolated(tag)
    await store_runs(stack, settings, tag, runs, departments)
    concurrency = settings.executor_concurrency
    base = await run_baseline(stack, tag, runs, concurrency) if baseline_first else 0.0
    served = await run_executor(stack, settings, tag, runs)
    if not baseline_first:
        base = await run_baseline(stack, tag, runs, concurrency)
    return served, base


async def measure(
    stack: BenchStack, departments: int, *, runs: int, repetitions: int, warmup: int
) -> PairedFigures:
    say(f"execute: warm-up with {warmup} runs")
    await one_repetition(stack, "execute-warm", warmup, departments, baseline_first=True)
    figures = PairedFigures()
    for rep in range(repetitions):
        served, base = await one_repetition(
            stack, f"execute-{rep}", runs, departments, baseline_first=rep % 2 == 1
        )
        figures.service_per_s.append(served)
        figures.baseline_per_s.append(base)
        say(f"execute: repetition {rep + 1}/{repetitions}: {served:,.0f} runs/s, baseline {base:,.0f}/s")
    return figures
