"""Run messages produced in record batches land where one-by-one sends of the same key land, in order."""

from __future__ import annotations

import asyncio

import orjson

from shared.kafka.clients import create_producer
from shared.kafka.topics import ensure_topics
from shared.runs.outbox import RunToPublish, produce_runs
from tests.support.helpers import consume_all, isolated


async def test_batched_run_messages_share_their_departments_partition_with_single_sends(settings):
    cfg = isolated(settings)
    await ensure_topics(cfg)
    producer = create_producer(cfg)
    await producer.start()
    try:
        departments = list(range(1, 41))
        single = {}
        for dep in departments:
            sent = await (await producer.send(cfg.topic_runs, value=b"{}", key=str(dep).encode()))
            single[dep] = sent.partition
        runs = [
            RunToPublish(1000 * dep + i, dep, headers=(("traceparent", b"t"),))
            for i in range(3)
            for dep in departments
        ]
        await produce_runs(producer, cfg, runs)
    finally:
        await producer.stop()
    messages = [
        m for m in await consume_all(cfg, cfg.topic_runs, expect=len(departments) * 4) if m.value != b"{}"
    ]
    assert len(messages) == len(runs)
    for message in messages:
        run = orjson.loads(message.value)
        assert message.partition == single[run["DepartmentId"]]
        assert message.key == str(run["DepartmentId"]).encode()
        assert ("traceparent", b"t") in list(message.headers)
    for dep in departments:
        assert [orjson.loads(m.value)["RunId"] for m in messages if m.key == str(dep).encode()] == [
            1000 * dep + i for i in range(3)
        ]


async def test_a_batch_of_run_messages_is_sent_at_once_whatever_the_producers_linger(settings):
    # The batch is complete when handed over: lingering for more (linger_ms) would only delay the runs.
    # With a producer that lingers two minutes, the acknowledgements still arrive within 30 s (without
    # closing the batch, this fails after the linger: stopping the producer sends it then).
    cfg = isolated(settings)
    await ensure_topics(cfg)
    producer = create_producer(cfg, linger_ms=120_000)
    await producer.start()
    try:
        await producer.partitions_for(cfg.topic_runs)
        await asyncio.wait_for(produce_runs(producer, cfg, [RunToPublish(7, 3)]), timeout=30)
    finally:
        await producer.stop()
    assert [orjson.loads(m.value)["RunId"] for m in await consume_all(cfg, cfg.topic_runs, expect=1)] == [7]
