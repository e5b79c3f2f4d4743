"""The baselines, each a process of its own like the service it is compared with.

    python -m bench.baselines kafka --bootstrap B --topic T --out-topic O --events N
    python -m bench.baselines http --url U --events N --concurrency C
    python -m bench.baselines api --port P --json FILE

``kafka`` and ``http`` print one JSON line with their figure and exit; ``api`` serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.workload import body_for
from shared.config import Settings
from shared.kafka.clients import create_consumer, create_producer


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


async def http_posts(url: str, events: int, concurrency: int) -> dict[str, Any]:
    """The same bodies the executor's runs render, POSTed with the same concurrency over keep-alive HTTPS."""
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    context = ssl.create_default_context()  # SSL_CERT_FILE names the bench CA, as for the executor
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(events):
        queue.put_nowait(i)
    failures = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            reply = await client.post(
                url,
                content=body_for(i),
                headers={"Content-Type": "application/json", "Idempotency-Key": f"wf-run-{i}-step-1"},
            )
            if reply.status_code != 200:
                failures += 1

    async with httpx.AsyncClient(verify=context, limits=limits, timeout=30.0) as client:
        await client.post(url, content=body_for(0))  # one connection up before the clock starts
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {"events": events, "seconds": elapsed, "per_s": events / elapsed, "failures": failures}


def serve_api(port: int, json_file: Path) -> None:
    """A bare FastAPI route returning the same JSON from memory, served as services.api serves its app."""
    import uvicorn
    from fastapi import FastAPI

    data = orjson.loads(json_file.read_bytes())
    app = FastAPI()

    @app.get("/api/v4/workflows")
    async def list_workflows() -> Any:
        return data

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="which", required=True)
    kafka = sub.add_parser("kafka")
    kafka.add_argument("--bootstrap", required=True)
    kafka.add_argument("--topic", required=True)
    kafka.add_argument("--out-topic", required=True)
    kafka.add_argument("--events", type=int, required=True)
    kafka.add_argument("--max-records", type=int, default=Settings().dispatcher_batch_max)
    http = sub.add_parser("http")
    http.add_argument("--url", required=True)
    http.add_argument("--events", type=int, required=True)
    http.add_argument("--concurrency", type=int, required=True)
    api = sub.add_parser("api")
    api.add_argument("--port", type=int, required=True)
    api.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    if args.which == "kafka":
        result = asyncio.run(
            kafka_loop(args.bootstrap, args.topic, args.out_topic, args.events, args.max_records)
        )
    elif args.which == "http":
        result = asyncio.run(http_posts(args.url, args.events, args.concurrency))
    else:
        serve_api(args.port, args.json)
        return
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
