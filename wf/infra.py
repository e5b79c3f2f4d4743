"""A local PostgreSQL + Kafka pair as tests and benchmarks hold them (either may be external)."""

from __future__ import annotations

from dataclasses import dataclass

from wf.kafka_local import LocalKafka
from wf.postgres_local import LocalPostgres
from wf.procs import stop_pid


@dataclass
class Infrastructure:
    database_url: str
    kafka_bootstrap: str
    postgres: LocalPostgres | None = None  # None when WF_DATABASE_URL named an external server
    kafka: LocalKafka | None = None  # None when WF_KAFKA_BOOTSTRAP named an external broker

    def stop(self) -> None:
        if self.kafka is not None and (pid := self.kafka.running_pid()) is not None:
            stop_pid(pid, timeout=30)
        if self.postgres is not None:
            self.postgres.stop()
