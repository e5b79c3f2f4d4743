"""No batch halts a partition: a batch mixing valid, poison, oversize, compressed and undecodable
records ends with every valid event stored as runs, every other record in the DLQ (original bytes, or
partition and offsets) and the dispatcher process still the same process; `wf dlq list` shows the
letters and `wf dlq replay` brings back the undecodable ones."""

from __future__ import annotations

import asyncio
import sys

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from shared.kafka.security import kafka_security
from tests.support.helpers import consume_all, event, execute, fetch, isolated, produce, wait_for
from tests.support.processes import REPO, ServiceProcess, settings_env
from tests.support.producers import kcat_produce
from tests.support.services import running_services

# The dispatcher process of this test has no zstd library (as aiokafka had no lz4 before cramjam was
# a dependency): a zstd batch is one it cannot decode.
NO_ZSTD = "import aiokafka.codec as codec\ncodec.has_zstd = lambda: False"


async def new_workflow(db: AsyncEngine, department_id: int, event_type: int = 0) -> int:
    await execute(
        db,
        "INSERT INTO workflows (department_id, name, trigger_event_type, is_enabled, max_retry_count, "
        "retry_backoff_base_seconds) VALUES (:d, 'wf', :t, true, 3, 5)",
        d=department_id,
        t=event_type,
    )
    rows = await fetch(db, "SELECT max(workflow_id) FROM workflows WHERE department_id = :d", d=department_id)
    return int(rows[0][0])


async def event_ids_with_runs(db: AsyncEngine, department_id: int) -> set[str]:
    rows = await fetch(db, "SELECT event_id FROM workflow_runs WHERE department_id = :d", d=department_id)
    return {row[0] for row in rows}


async def wf(settings: Settings, *args: str) -> str:
    """The `wf` command line with these settings; its stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wf.cli",
        *args,
        env=settings_env(settings),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


async def healthy(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_mixed_batch_delivers_every_valid_event_and_dead_letters_the_rest(
    db: AsyncEngine, settings: Settings, department_id: int, tmp_path
) -> None:
    # It produces (runs, dead letters) with lz4, having no zstd; so does `wf dlq replay` below.
    cfg = isolated(settings, partitions_events=1, max_event_bytes=4096, kafka_compression="lz4")
    await new_workflow(db, department_id)
    valid = [event(department_id, 0) for _ in range(7)]
    line = [orjson.dumps(v) for v in valid]
    oversize = orjson.dumps(event(department_id, 0, payload={"blob": "x" * 5000}))

    dispatcher = ServiceProcess("dispatcher", cfg, tmp_path, preamble=NO_ZSTD).start()
    assert dispatcher.proc is not None
    pid = dispatcher.proc.pid
    try:
        await wait_for(lambda: healthy(dispatcher.port), timeout=60)
        # One lz4 batch of valid, unparseable and oversize records, with headers and null keys.
        await kcat_produce(
            cfg,
            cfg.topic_events,
            [line[0], b"{not json", line[1], oversize, line[2]],
            codec="lz4",
            headers={"source": "cad-bridge"},
        )
        # A zstd batch this dispatcher cannot decode (two valid events in it).
        producer = AIOKafkaProducer(**kafka_security(cfg), compression_type="zstd", linger_ms=50)
        await producer.start()
        try:
            sent = [await producer.send(cfg.topic_events, value) for value in line[3:5]]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        await kcat_produce(cfg, cfg.topic_events, [line[5], b"[1, 2]"], codec="snappy")
        await kcat_produce(cfg, cfg.topic_events, [line[6]], codec="gzip", keys=[str(department_id).encode()])

        readable = {valid[i]["EventId"] for i in (0, 1, 2, 5, 6)}

        async def all_readable_stored() -> bool:
            return await event_ids_with_runs(db, department_id) >= readable

        await wait_for(all_readable_stored, timeout=60)
        dead = await consume_all(cfg, cfg.topic_dlq, expect=4)
        assert dispatcher.proc.poll() is None, dispatcher.log()[-3000:]
        assert dispatcher.proc.pid == pid
        assert await healthy(dispatcher.port)

        # The operator's view, then a replay: the zstd batch's events are read again from the events
        # topic and put back with the CLI's own codec, which this dispatcher reads.
        listed = await wf(cfg, "dlq", "list")
        assert "4 dead letters (invalid_json 1, invalid_shape 1, too_large 1, undecodable 1)" in listed
        assert f"{cfg.topic_events}[0]@5-6" in listed
        assert str(department_id) in listed  # the oversize event's department
        dry = await wf(cfg, "dlq", "replay", "--reason", "invalid_json", "--dry-run")
        assert "would replay 1 messages from 1 dead letters" in dry
        replayed = await wf(cfg, "dlq", "replay", "--reason", "undecodable", "--since", "1h")
        assert "replayed 2 messages from 1 dead letters" in replayed
        assert "replaying [####################] 1/1" in replayed  # the progress bar, on stderr

        async def all_valid_stored() -> bool:
            return await event_ids_with_runs(db, department_id) >= {v["EventId"] for v in valid}

        await wait_for(all_valid_stored, timeout=60)
        assert dispatcher.proc.pid == pid
        assert dispatcher.proc.poll() is None
    finally:
        code = dispatcher.terminate() if dispatcher.proc.poll() is None else dispatcher.proc.returncode
    assert code == 0, dispatcher.log()[-3000:]

    assert await event_ids_with_runs(db, department_id) == {v["EventId"] for v in valid}
    by_code = {dict(m.headers)["wf-dlq-code"].decode(): m for m in dead}
    assert sorted(by_code) == ["invalid_json", "invalid_shape", "too_large", "undecodable"], by_code.keys()
    assert by_code["invalid_json"].value == b"{not json"
    assert by_code["too_large"].value == oversize
    assert by_code["invalid_shape"].value == b"[1, 2]"
    assert dict(by_code["invalid_json"].headers)["source"] == b"cad-bridge"  # the original headers travel
    undecodable = by_code["undecodable"]
    headers = dict(undecodable.headers)
    assert undecodable.value is None
    assert headers["wf-original-topic"].decode() == cfg.topic_events
    first, last = int(headers["wf-original-offset"]), int(headers["wf-original-last-offset"])
    assert (first, last) == (5, 6)  # the zstd batch: offsets 5 and 6 of the single partition
    assert "zstd" in headers["wf-dlq-reason"].decode()
    assert "record.dead_lettered" in dispatcher.log()


async def test_executor_and_health_dead_letter_what_they_cannot_use(settings: Settings) -> None:
    cfg = isolated(settings)
    async with running_services(cfg, dispatcher=False):
        await produce(cfg, cfg.topic_runs, [b"not a run message", orjson.dumps({"RunId": "x"})], key=b"k")
        await produce(cfg, cfg.topic_results, [b"\x00\x01 not an outcome"], key=b"k")
        dead = await consume_all(cfg, cfg.topic_dlq, expect=3)
    codes = sorted(
        (dict(m.headers)["wf-original-topic"].decode(), dict(m.headers)["wf-dlq-code"].decode()) for m in dead
    )
    assert codes == [
        (cfg.topic_results, "invalid_outcome"),
        (cfg.topic_runs, "invalid_run"),
        (cfg.topic_runs, "invalid_run"),
    ]
    assert sorted(m.value for m in dead) == sorted(
        [b"not a run message", orjson.dumps({"RunId": "x"}), b"\x00\x01 not an outcome"]
    )
