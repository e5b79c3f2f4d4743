"""What the fault tests drive through the system: departments and workflows written straight to
the database, runs handed over as the dispatcher hands them, events produced at a steady rate
(re-sent when the broker does not acknowledge them), and peers that come back on the same port."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from shared.enums import ActionType, CredentialType, RunStatus
from shared.runs.outbox import RunToPublish, publish_committed_runs
from tests.peers.https_server import HttpsPeer
from tests.peers.smtp_server import SmtpPeer
from tests.support.helpers import event, fetch, insert_step, store_credential, wait_for

FINAL = (int(RunStatus.Completed), int(RunStatus.Failed), int(RunStatus.Cancelled))


@dataclass
class Step:
    action_type: int
    template: str
    config: dict[str, Any]
    credential_id: int | None = None


def http_post(peer: HttpsPeer, path: str, template: str = '{"call": "{{ call.name }}"}') -> Step:
    return Step(int(ActionType.CallApiPost), template, {"url": peer.url(path, host="127.0.0.1")})


async def department(db: AsyncEngine, department_id: int, plan: str = "Paid") -> None:
    async with db.begin() as conn:
        await conn.execute(
            text("INSERT INTO departments (department_id, plan) VALUES (:d, :p) ON CONFLICT DO NOTHING"),
            {"d": department_id, "p": plan},
        )


async def workflow(
    db: AsyncEngine, department_id: int, *steps: Step, max_retries: int = 3, backoff_s: int = 1
) -> tuple[int, list[int]]:
    await department(db, department_id)
    async with db.begin() as conn:
        workflow_id = int(
            (
                await conn.execute(
                    text(
                        "INSERT INTO workflows (department_id, name, trigger_event_type, is_enabled, max_retry_count, "
                        "retry_backoff_base_seconds) VALUES (:d, 'fault test', 0, true, :r, :b) RETURNING workflow_id"
                    ),
                    {"d": department_id, "r": max_retries, "b": backoff_s},
                )
            ).scalar_one()
        )
        step_ids = [
            await insert_step(
                conn,
                workflow_id,
                action_type=step.action_type,
                step_order=order,
                template=step.template,
                config=step.config,
                credential_id=step.credential_id,
            )
            for order, step in enumerate(steps, start=1)
        ]
    return workflow_id, step_ids


async def smtp_credential(db: AsyncEngine, settings: Settings, department_id: int, peer_port: int) -> int:
    """An SMTP credential stored as the API stores it (secrets encrypted)."""
    await department(db, department_id)
    data = {
        "host": "127.0.0.1",
        "port": peer_port,
        "security": "none",
        "fromAddress": "alerts@dept.example.org",
    }
    async with db.begin() as conn:
        return await store_credential(conn, settings, department_id, CredentialType.Smtp, data)


async def start_run(
    db: AsyncEngine, producer: AIOKafkaProducer, settings: Settings, workflow_id: int, department_id: int
) -> int:
    """A Pending run committed and its message produced, as the dispatcher does for a matched event."""
    async with db.begin() as conn:
        run_id = int(
            (
                await conn.execute(
                    text(
                        "INSERT INTO workflow_runs (workflow_id, department_id, status, trigger_event_type, event_id, "
                        "attempt_number, is_test, input_payload, occurred_on) VALUES (:w, :d, 0, 0, :e, 1, false, "
                        "CAST(:p AS jsonb), now()) RETURNING workflow_run_id"
                    ),
                    {
                        "w": workflow_id,
                        "d": department_id,
                        "e": str(uuid.uuid4()),
                        "p": json.dumps({"call": {"id": 1, "name": "Structure Fire"}}),
                    },
                )
            ).scalar_one()
        )
    await publish_committed_runs(db, producer, settings, [RunToPublish(run_id, department_id)])
    return run_id


async def statuses(db: AsyncEngine, run_ids: list[int]) -> dict[int, int]:
    rows = await fetch(
        db, "SELECT workflow_run_id, status FROM workflow_runs WHERE workflow_run_id = ANY(:r)", r=run_ids
    )
    return dict(rows)


async def wait_final(db: AsyncEngine, run_ids: list[int], *, timeout: float = 60.0) -> dict[int, int]:
    async def all_final() -> dict[int, int]:
        found = await statuses(db, run_ids)
        return found if len(found) == len(run_ids) and all(s in FINAL for s in found.values()) else {}

    try:
        return await wait_for(all_final, timeout=timeout, interval=0.2)
    except TimeoutError:
        raise AssertionError(f"runs not final after {timeout:g} s: {await statuses(db, run_ids)}") from None


def keys_by_path(peer: HttpsPeer) -> dict[str, Counter[str]]:
    """Per path, how many requests carried each Idempotency-Key (distinct keys = actions performed)."""
    seen: dict[str, Counter[str]] = {}
    for request in peer.requests:
        seen.setdefault(request.path, Counter())[request.headers.get("idempotency-key", "")] += 1
    return seen


class StickyHttpsPeer(HttpsPeer):
    """An HttpsPeer that comes back on the same port after ``stop()``: a peer down for a while."""

    async def start(self) -> None:
        if not self.port:
            await super().start()
            return
        from aiohttp import web

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(
            self._runner,
            "127.0.0.1",
            self.port,
            ssl_context=self._ca.server_context(*self._hostnames),
            shutdown_timeout=0.5,
        ).start()


class StickySmtpPeer(SmtpPeer):
    """An SmtpPeer that comes back on the same port after ``stop()``."""

    async def start(self) -> None:
        if not self.port:
            await super().start()
            return
        from aiosmtpd.smtp import SMTP

        from tests.peers.smtp_server import _Handler

        handler = _Handler(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(handler, hostname="mail.test", loop=loop), "127.0.0.1", self.port
        )


@dataclass
class SteadyLoad:
    """Events for ``departments`` at ``rate`` per second, in chunks; a chunk the broker did not
    acknowledge is sent again (same EventIds: at-least-once producing, deduplicated by the dispatcher)."""

    settings: Settings
    departments: list[int]
    total: int
    rate: float
    chunk: int = 50
    sent: list[str] = field(default_factory=list)
    resends: int = 0

    async def run(self) -> None:
        producer = await self._producer()
        events = [event(self.departments[i % len(self.departments)], 0) for i in range(self.total)]
        try:
            for start in range(0, len(events), self.chunk):
                chunk = events[start : start + self.chunk]
                began = asyncio.get_running_loop().time()
                while True:
                    try:
                        futures = [
                            await producer.send(
                                self.settings.topic_events,
                                orjson.dumps(e),
                                key=str(e["DepartmentId"]).encode(),
                            )
                            for e in chunk
                        ]
                        await asyncio.gather(*futures)
                        break
                    except Exception:
                        self.resends += 1
                        await asyncio.sleep(0.5)
                self.sent.extend(e["EventId"] for e in chunk)
                pause = self.chunk / self.rate - (asyncio.get_running_loop().time() - began)
                if pause > 0:
                    await asyncio.sleep(pause)
        finally:
            await producer.stop()

    async def _producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            request_timeout_ms=5000,
            retry_backoff_ms=200,
            linger_ms=5,
        )
        await producer.start()
        return producer


async def departments_with_workflow(db: AsyncEngine, first_department: int, count: int) -> list[int]:
    """``count`` departments, each with one enabled workflow on event type 0 (no steps: runs finish at once)."""
    departments = [first_department * 100 + i for i in range(count)]
    for dep in departments:
        await workflow(db, dep)
    return departments


async def run_counts(db: AsyncEngine, departments: list[int]) -> tuple[int, int, int]:
    """(runs, distinct (workflow, event) pairs, runs Completed) for these departments."""
    rows = await fetch(
        db,
        "SELECT count(*), count(DISTINCT (workflow_id, event_id)), count(*) FILTER "
        "(WHERE status = 2) FROM workflow_runs WHERE department_id = ANY(:d)",
        d=departments,
    )
    total, distinct, completed = rows[0]
    return int(total), int(distinct), int(completed)


async def wait_all_completed(
    db: AsyncEngine, departments: list[int], expected: int, *, timeout: float = 120.0
) -> None:
    async def done() -> bool:
        total, _, completed = await run_counts(db, departments)
        return total >= expected and completed >= expected

    try:
        await wait_for(done, timeout=timeout, interval=0.5)
    except TimeoutError:
        raise AssertionError(
            f"after {timeout:g} s: (runs, distinct, completed) = "
            f"{await run_counts(db, departments)}, expected {expected}"
        ) from None


async def assert_every_event_has_its_run_once(
    db: AsyncEngine, departments: list[int], sent: list[str]
) -> None:
    total, distinct, completed = await run_counts(db, departments)
    assert total == distinct == completed == len(sent) == len(set(sent)), (
        total,
        distinct,
        completed,
        len(sent),
    )
    stored = {
        row[0]
        for row in await fetch(
            db, "SELECT event_id FROM workflow_runs WHERE department_id = ANY(:d)", d=departments
        )
    }
    assert stored == set(sent)
