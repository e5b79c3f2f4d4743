"""The baselines, each a process of its own like the service it is compared with.

    python -m bench.baselines kafka --bootstrap B --topic T --out-topic O --events N
    python -m bench.baselines kafka-tuned --bootstrap B --topic T --out-topic O --events N
    python -m bench.baselines pipeline --database D --bootstrap B --topic T --out-topic O --url U --events N
        --concurrency C
    python -m bench.baselines api --port P --json FILE

``kafka``, ``http`` and ``pipeline`` print one JSON line with their figure and exit; ``api`` serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import time
import uuid
from http import HTTPStatus
from pathlib import Path
from typing import Any

import orjson

from bench.workload import body_for
from shared.config import Settings
from shared.kafka.clients import create_consumer, create_producer
from shared.runs.sql import COMPLETED, PENDING, RUNNING


async def kafka_loop(
    bootstrap: str, topic: str, out_topic: str, events: int, max_records: int
) -> dict[str, Any]:
    """Consume → parse → produce one message each → await acks → commit, batch by batch: the
    dispatcher's loop without its database work, with the same client settings and batch size."""
    settings = Settings(kafka_bootstrap=bootstrap)
    consumer = create_consumer(
        settings, topic, group_id=f"bench-baseline-{uuid.uuid4().hex[:8]}", max_records=max_records
    )
    producer = create_producer(settings)
    await consumer.start()
    await producer.start()
    done = 0
    started: float | None = None
    try:
        while done < events:
            batch = await consumer.getmany(timeout_ms=100, max_records=max_records)
            if not batch:
                continue
            if started is None:
                started = time.perf_counter()
            futures = []
            for records in batch.values():
                for record in records:
                    document = orjson.loads(record.value or b"{}")
                    message = orjson.dumps(
                        {"RunId": done, "DepartmentId": document["DepartmentId"], "AttemptNumber": 1}
                    )
                    futures.append(await producer.send(out_topic, value=message, key=record.key))
                    done += 1
            await asyncio.gather(*futures)
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
        await producer.stop()
    return {"events": done, "seconds": elapsed, "per_s": done / elapsed if elapsed else 0.0}


# The bare pipeline's two statements per batch: claim (returning what the body needs), then the step's log,
# its ledger entry and the settlement together.
PIPELINE_CLAIM = f"""
    UPDATE workflow_runs r SET status = {RUNNING}, started_on = now(), lease_owner = 'bench-bare',
        lease_until = now() + interval '60 seconds'
    WHERE r.workflow_run_id = ANY(%(ids)s) AND r.status = {PENDING}
    RETURNING r.workflow_run_id, r.department_id, r.workflow_id, r.input_payload,
        (SELECT s.workflow_step_id FROM workflow_steps s WHERE s.workflow_id = r.workflow_id LIMIT 1)
    """
PIPELINE_SETTLE = f"""
    WITH t AS (
        SELECT * FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb))
            AS t(run_id bigint, step_id int, rendered text, result text)
    ), logged AS (
        INSERT INTO workflow_run_logs (workflow_run_id, workflow_step_id, attempt_number, status, rendered_output,
                                       action_result, started_on, completed_on, duration_ms)
        SELECT run_id, step_id, 1, {COMPLETED}, rendered, result, now(), now(), 0 FROM t
    ), ledger AS (
        INSERT INTO run_step_ledger (workflow_run_id, workflow_step_id, outcome, completed_on)
        SELECT run_id, step_id, 'completed', now() FROM t ON CONFLICT DO NOTHING
    )
    UPDATE workflow_runs r SET status = {COMPLETED}, completed_on = now(), lease_owner = NULL, lease_until = NULL
    FROM t WHERE r.workflow_run_id = t.run_id
    """


async def bare_pipeline(
    database: str, bootstrap: str, topic: str, out_topic: str, url: str, events: int, concurrency: int
) -> dict[str, Any]:
    """The executor's per-run work for one CallApiPost step with the leanest tools: consume up to
    ``concurrency`` run messages, claim them in one statement, POST their bodies with aiohttp (C parser,
    keep-alive), store the logs, ledger entries and settlements in one statement, produce the outcomes,
    commit. No templates, leases, retries or egress checks: a bound from above, not a rival."""
    import aiohttp
    import psycopg

    settings = Settings(kafka_bootstrap=bootstrap)
    consumer = create_consumer(
        settings, topic, group_id=f"bench-bare-{uuid.uuid4().hex[:8]}", max_records=concurrency
    )
    producer = create_producer(settings, linger_ms=10)
    conn = await psycopg.AsyncConnection.connect(database, autocommit=True, prepare_threshold=1)
    connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(), limit=concurrency)
    session = aiohttp.ClientSession(connector=connector)
    await consumer.start()
    await producer.start()
    done = failures = 0
    started: float | None = None

    async def post(run_id: int, body: str) -> tuple[int, str]:
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"wf-run-{run_id}-step-1"}
        async with session.post(url, data=body, headers=headers) as reply:
            return reply.status, await reply.text()

    try:
        async with session.post(url, data=body_for(0)) as warm:  # one connection up before the clock
            await warm.read()
        while done < events:
            batch = await consumer.getmany(timeout_ms=100, max_records=concurrency)
            records = [record for partition in batch.values() for record in partition]
            if not records:
                continue
            if started is None:
                started = time.perf_counter()
            ids = [int(orjson.loads(record.value or b"{}")["RunId"]) for record in records]
            claimed = await (await conn.execute(PIPELINE_CLAIM, {"ids": ids})).fetchall()
            bodies = [body_for(int(payload["call"]["id"])) for _, _, _, payload, _ in claimed]
            replies = await asyncio.gather(
                *(post(row[0], body) for row, body in zip(claimed, bodies, strict=True))
            )
            failures += sum(1 for code, _ in replies if code != HTTPStatus.OK)
            rows = [
                {
                    "run_id": row[0],
                    "step_id": row[4],
                    "rendered": body,
                    "result": f"HTTP {status}: {text[:200]}",
                }
                for row, body, (status, text) in zip(claimed, bodies, replies, strict=True)
            ]
            await conn.execute(PIPELINE_SETTLE, {"rows": orjson.dumps(rows).decode()})
            acks = [
                await producer.send(
                    out_topic,
                    key=str(row[1]).encode(),
                    value=orjson.dumps(
                        {"RunId": row[0], "WorkflowId": row[2], "DepartmentId": row[1], "Status": COMPLETED}
                    ),
                )
                for row in claimed
            ]
            await asyncio.gather(*acks)
            await consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batch.items() if recs})
            done += len(records)
        elapsed = time.perf_counter() - (started or time.perf_counter())
    finally:
        await session.close()
        await conn.close()
        await consumer.stop()
        await producer.stop()
    return {
        "events": done,
        "seconds": elapsed,
        "per_s": done / elapsed if elapsed else 0.0,
        "failures": failures,
        "cpu_s": time.process_time(),  # the whole process, start-up included, as for the executor
    }


async def kafka_tuned(
    bootstrap: str, topic: str, out_topic: str, events: int, max_records: int
) -> dict[str, Any]:
    """The dispatcher's loop without its database work: the same batch loop (``shared.kafka.batches``,
    depth 2: batch N+1 parsed while batch N's messages are acknowledged, offsets committed in order at
    most every 0.2 s) and the same record-batch production (``shared.runs.outbox.produce_keyed``).
    Timed like the dispatcher, from its stamps (``WF_STAGE_LOG``): first batch fetched → last commit."""
    from shared import probes
    from shared.kafka.batches import BatchLoop
    from shared.runs.outbox import produce_keyed

    settings = Settings(kafka_bootstrap=bootstrap)
    consumer = create_consumer(
        settings, group_id=f"bench-tuned-{uuid.uuid4().hex[:8]}", max_records=max_records
    )
    producer = create_producer(settings)
    await producer.start()
    done = 0
    all_done = asyncio.Event()
    next_run = 0

    async def handle(records: Any) -> Any:
        nonlocal next_run
        if records:
            probes.stamp("dispatcher.fetched", records[0].offset)
        messages = []
        for record in records:
            document = orjson.loads(record.value or b"{}")
            value = orjson.dumps(
                {"RunId": next_run, "DepartmentId": document["DepartmentId"], "AttemptNumber": 1}
            )
            messages.append((record.key or b"", value, ()))
            next_run += 1

        async def rest() -> None:
            nonlocal done
            await produce_keyed(producer, out_topic, messages)
            done += len(messages)
            if done >= events:
                all_done.set()

        return rest

    loop = BatchLoop(consumer, handle, max_records=max_records, depth=2, commit_interval_s=0.2)
    consumer.subscribe([topic], listener=loop)
    await consumer.start()
    task = asyncio.create_task(loop.run())
    try:
        await all_done.wait()
        await asyncio.sleep(1.0)  # the last commit is due within 0.2 s (the clock stops at it, not here)
        loop.stop()
        await task
    finally:
        await consumer.stop()
        await producer.stop()
    return {"events": done}


def serve_api(port: int, json_file: Path) -> None:
    """A bare FastAPI route returning the same JSON as bytes encoded once, served as services.api serves
    its app: the cost of FastAPI + uvicorn per request, with no encoding at all."""
    import uvicorn
    from fastapi import FastAPI, Response

    body = orjson.dumps(orjson.loads(json_file.read_bytes()))
    app = FastAPI()

    @app.get("/api/v4/workflows")
    async def list_workflows() -> Response:
        return Response(content=body, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="which", required=True)
    for loop in ("kafka", "kafka-tuned"):
        kafka = sub.add_parser(loop)
        kafka.add_argument("--bootstrap", required=True)
        kafka.add_argument("--topic", required=True)
        kafka.add_argument("--out-topic", required=True)
        kafka.add_argument("--events", type=int, required=True)
        kafka.add_argument("--max-records", type=int, default=Settings().dispatcher_batch_max)
    bare = sub.add_parser("pipeline")
    bare.add_argument("--database", required=True)
    bare.add_argument("--bootstrap", required=True)
    bare.add_argument("--topic", required=True)
    bare.add_argument("--out-topic", required=True)
    bare.add_argument("--url", required=True)
    bare.add_argument("--events", type=int, required=True)
    bare.add_argument("--concurrency", type=int, required=True)
    api = sub.add_parser("api")
    api.add_argument("--port", type=int, required=True)
    api.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    if args.which == "kafka":
        result = asyncio.run(
            kafka_loop(args.bootstrap, args.topic, args.out_topic, args.events, args.max_records)
        )
    elif args.which == "kafka-tuned":
        result = asyncio.run(
            kafka_tuned(args.bootstrap, args.topic, args.out_topic, args.events, args.max_records)
        )
    elif args.which == "pipeline":
        result = asyncio.run(
            bare_pipeline(
                args.database,
                args.bootstrap,
                args.topic,
                args.out_topic,
                args.url,
                args.events,
                args.concurrency,
            )
        )
    else:
        serve_api(args.port, args.json)
        return
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
