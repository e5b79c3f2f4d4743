"""Producer compression: bytes on the wire and CPU per record batch, for each codec Kafka defines.

    .venv/bin/python -m bench.codecs

Builds the record batches our producers send (aiokafka's v2 batch builder, as AIOKafkaProducer does)
from realistic messages: events as CAD bridges send them (the bench workload's event with a call
payload) and the run messages the dispatcher produces, at the batch sizes the services see (a batch
of 1 at low rates with a 2 ms linger, 20, and 500 under load). Compression and decompression (a
consumer reading every record) are timed on one core, median of repeated runs. No broker needed.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable

import orjson
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from bench.workload import event

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
SIZES = (1, 20, 500)


def events(n: int) -> list[bytes]:
    return [
        event(str(uuid.uuid4()), 1000 + i % 300, i % 3, 500_000 + i, sent_us=1_764_000_000_000_000 + i)
        for i in range(n)
    ]


def run_messages(n: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "RunId": 9_000_000 + i,
                "WorkflowId": 3000 + i % 900,
                "DepartmentId": 1000 + i % 300,
                "EventId": str(uuid.uuid4()),
                "Attempt": 1,
                "QueuedOn": "2026-11-29T12:00:00.123456Z",
            }
        )
        for i in range(n)
    ]


def build(values: list[bytes], codec: int) -> bytes:
    builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 16 * 1024 * 1024)
    now = int(time.time() * 1000)
    for offset, value in enumerate(values):
        builder.append(offset, now, str(offset % 300).encode(), value, [("traceparent", b"00-" + b"0" * 51)])
    return bytes(builder.build())


def read(data: bytes) -> int:
    return sum(len(record.value) for record in DefaultRecordBatch(data))


def median_us(fn: Callable[[], object], budget_s: float = 0.3) -> float:
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while time.perf_counter() < deadline or len(times) < 5:
        began = time.process_time_ns()
        fn()
        times.append((time.process_time_ns() - began) / 1000)
    return statistics.median(times)


def main() -> None:
    print("| messages | batch | codec | bytes | ratio | compress µs/msg | decompress µs/msg |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for kind, make in (("events", events), ("run messages", run_messages)):
        for size in SIZES:
            values = make(size)
            plain = len(build(values, 0))
            for name, codec in CODECS.items():
                data = build(values, codec)
                compress = median_us(lambda v=values, c=codec: build(v, c)) / size  # type: ignore[misc]
                decompress = median_us(lambda d=data: read(d)) / size  # type: ignore[misc]
                print(
                    f"| {kind} | {size} | {name} | {len(data):,} | {plain / len(data):.2f} | "
                    f"{compress:.1f} | {decompress:.1f} |"
                )


if __name__ == "__main__":
    main()
