"""A dispatcher process killed (SIGKILL) mid-batch loses no event, duplicates no run and leaves no run
without its message to executors after restart."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

from shared.config import Settings
from tests.support.helpers import event, fetch, isolated, produce, wait_for
from tests.support.processes import ServiceProcess


async def test_dispatcher_killed_mid_batch_loses_nothing_and_duplicates_nothing(db, settings, tmp_path):
    cfg = isolated(settings, dispatcher_batch_max=200)
    base = 7_000_000 + (id(tmp_path) % 10_000) * 100
    departments = list(range(base, base + 50))
    async with db.begin() as conn:
        for dep in departments:
            await conn.execute(
                text("INSERT INTO departments (department_id, plan) VALUES (:d, 'Paid')"), {"d": dep}
            )
            for _ in range(2):
                await conn.execute(
                    text(
                        "INSERT INTO workflows (department_id, name, trigger_event_type, is_enabled, max_retry_count, "
                        "retry_backoff_base_seconds) VALUES (:d, 'wf', 0, true, 3, 5)"
                    ),
                    {"d": dep},
                )
    events = [event(dep, 0) for _ in range(40) for dep in departments]  # 2,000 events → 4,000 runs

    first = ServiceProcess("dispatcher", cfg, tmp_path).start()
    try:
        await produce(cfg, cfg.topic_events, events)

        async def some_stored():
            rows = await fetch(
                db, "SELECT count(*) FROM workflow_runs WHERE department_id = ANY(:d)", d=departments
            )
            return rows[0][0] >= 400

        await wait_for(some_stored, timeout=60, interval=0.05)
        first.kill()
    finally:
        if first.proc and first.proc.poll() is None:
            first.kill()
    stored_at_kill = (
        await fetch(db, "SELECT count(*) FROM workflow_runs WHERE department_id = ANY(:d)", d=departments)
    )[0][0]
    assert stored_at_kill < 4000, "the kill came too late to prove anything"

    second = ServiceProcess("dispatcher", cfg, tmp_path).start()
    try:

        async def all_stored():
            rows = await fetch(
                db, "SELECT count(*) FROM workflow_runs WHERE department_id = ANY(:d)", d=departments
            )
            return rows[0][0] >= 4000

        await wait_for(all_stored, timeout=90)

        async def all_published():
            # every due run is handed to executors: by the dispatcher, or by the scheduler for the crash gap
            rows = await fetch(
                db,
                "SELECT count(*) FROM workflow_runs WHERE department_id = ANY(:d) "
                "AND status IN (0, 5) AND published_on IS NULL",
                d=departments,
            )
            return rows[0][0] == 0

        await wait_for(all_published, timeout=30)
    finally:
        assert second.terminate() == 0, second.log()[-2000:]
    total, distinct = (
        await fetch(
            db,
            "SELECT count(*), count(DISTINCT (workflow_id, event_id)) FROM workflow_runs "
            "WHERE department_id = ANY(:d)",
            d=departments,
        )
    )[0]
    assert total == distinct == 4000
    # Runs stored before the kill whose messages were not acknowledged are produced again when their
    # events are read again (their offsets were not committed): every run reaches the run topic.
    run_ids = {
        row[0]
        for row in await fetch(
            db, "SELECT workflow_run_id FROM workflow_runs WHERE department_id = ANY(:d)", d=departments
        )
    }
    assert run_ids <= await run_ids_in_topic(cfg, until=run_ids)


async def run_ids_in_topic(cfg: Settings, *, until: set[int], timeout: float = 60) -> set[int]:
    """The RunIds on the run topic, read from the start until all of ``until`` were seen (or time is up)."""
    consumer = AIOKafkaConsumer(
        cfg.topic_runs, bootstrap_servers=cfg.kafka_bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: set[int] = set()
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not until <= seen:
                    for records in (await consumer.getmany(timeout_ms=300)).values():
                        seen.update(orjson.loads(r.value)["RunId"] for r in records)
    finally:
        await consumer.stop()
    return seen
