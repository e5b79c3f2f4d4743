"""What every measurement shares: the infrastructure, the HTTPS sink, a database engine and helpers to
create topics and produce events quickly."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.harness import (
    RUN_DIR,
    Process,
    bench_settings,
    engine_for,
    settings_env_plain,
    wait_port,
)
from bench.sink import make_certificates
from shared.config import Settings
from shared.kafka.clients import create_reader
from shared.kafka.security import kafka_security
from shared.kafka.topics import ensure_topics
from wf.infra import Infrastructure
from wf.procs import free_port


@dataclass
class BenchStack:
    infra: Infrastructure
    settings: Settings = field(init=False)
    ca: Path = field(init=False)
    sink: Process | None = None
    sink_port: int = 0
    engine: AsyncEngine = field(init=False)
    overrides: dict[str, str] = field(default_factory=dict)
    _sink_client: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        self.settings = bench_settings(self.infra, **self.overrides)
        self.engine = engine_for(self.infra.database_url)

    @property
    def sink_url(self) -> str:
        return f"https://127.0.0.1:{self.sink_port}/sink"

    def env(self) -> dict[str, str]:
        """Extra environment of every process that talks to the sink: trust the bench CA."""
        return {"SSL_CERT_FILE": str(self.ca)}

    async def start_sink(self) -> None:
        self.ca, cert, key = make_certificates(RUN_DIR / "tls")
        self.sink_port = free_port()
        env = {**settings_env_plain(), **self.env()}
        self.sink = Process(
            "sink",
            [
                sys.executable,
                "-m",
                "bench.sink",
                "--port",
                str(self.sink_port),
                "--cert",
                str(cert),
                "--key",
                str(key),
            ],
            env,
        ).start()
        await wait_port(self.sink_port, self.sink)
        self._sink_client = httpx.AsyncClient(verify=str(self.ca), timeout=30.0)

    def infra_pids(self) -> dict[str, tuple[int, bool]]:
        """The local servers' and the sink's processes, for ``bench.cpu.CpuMeter`` (PostgreSQL with its
        backends)."""
        pids: dict[str, tuple[int, bool]] = {}
        if self.infra.postgres is not None and (pid := self.infra.postgres.running_pid()) is not None:
            pids["postgres"] = (pid, True)
        if self.infra.kafka is not None and (pid := self.infra.kafka.running_pid()) is not None:
            pids["kafka"] = (pid, False)
        if self.sink is not None and self.sink.alive():
            pids["sink"] = (self.sink.pid, False)
        return pids

    async def sink_stats(self) -> dict[str, Any]:
        assert self._sink_client is not None
        reply = await self._sink_client.get(f"https://127.0.0.1:{self.sink_port}/stats")
        return dict(reply.json())

    async def sink_reset(self) -> None:
        assert self._sink_client is not None
        await self._sink_client.post(f"https://127.0.0.1:{self.sink_port}/reset")

    async def close(self) -> None:
        if self._sink_client is not None:
            await self._sink_client.aclose()
        if self.sink is not None:
            self.sink.stop()
        await self.engine.dispose()

    def isolated(self, tag: str, **overrides: Any) -> Settings:
        """Settings with topics and consumer groups of their own for one repetition."""
        values: dict[str, Any] = {
            "topic_events": f"bench.{tag}.events",
            "topic_runs": f"bench.{tag}.runs",
            "topic_results": f"bench.{tag}.results",
            "topic_dlq": f"bench.{tag}.dlq",
            "consumer_group_prefix": f"bench-{tag}",
        }
        values.update(overrides)
        return self.settings.model_copy(update=values)

    async def create_topics(self, settings: Settings) -> None:
        await ensure_topics(settings)

    async def produce(self, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> int:
        """Produce (key, value) pairs as fast as the client allows; returns how many."""
        producer = AIOKafkaProducer(
            **kafka_security(self.settings),
            acks="all",
            linger_ms=5,
            max_batch_size=512 * 1024,
        )
        await producer.start()
        count = 0
        try:
            pending = []
            for key, value in messages:
                pending.append(await producer.send(topic, value=value, key=key))
                count += 1
                if len(pending) >= 5000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
        finally:
            await producer.stop()
        return count


async def topic_size(settings: Settings, topic: str, partitions: int) -> int:
    """How many messages a topic of ``partitions`` partitions holds (the sum of their end offsets)."""
    from aiokafka import TopicPartition

    consumer = create_reader(settings)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()
