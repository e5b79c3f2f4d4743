"""The dispatcher against the real broker and database: idempotency, replicas, limits, DLQ, matching."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import Settings
from tests.support.helpers import consume_all, event, execute, fetch, isolated, produce, wait_for
from tests.support.services import running_services


async def new_workflow(
    db: AsyncEngine, department_id: int, event_type: int = 0, *, enabled: bool = True
) -> int:
    async with db.begin() as conn:
        from sqlalchemy import text

        row = (
            await conn.execute(
                text(
                    "INSERT INTO workflows (department_id, name, trigger_event_type, is_enabled, max_retry_count, "
                    "retry_backoff_base_seconds) VALUES (:d, 'wf', :t, :e, 3, 5) RETURNING workflow_id"
                ),
                {"d": department_id, "t": event_type, "e": enabled},
            )
        ).one()
    return int(row[0])


async def set_plan(db: AsyncEngine, department_id: int, plan: str) -> None:
    await execute(
        db,
        "INSERT INTO departments (department_id, plan) VALUES (:d, :p) "
        "ON CONFLICT (department_id) DO UPDATE SET plan = :p",
        d=department_id,
        p=plan,
    )


async def runs_of(db: AsyncEngine, department_id: int) -> list[tuple]:
    return await fetch(
        db,
        "SELECT workflow_run_id, workflow_id, event_id, status, next_attempt_on, "
        "published_on, error_message FROM workflow_runs WHERE department_id = :d "
        "ORDER BY workflow_run_id",
        d=department_id,
    )


async def count_runs(db: AsyncEngine, department_id: int, expected: int) -> list[tuple]:
    async def enough():
        rows = await runs_of(db, department_id)
        return rows if len(rows) >= expected else None

    await wait_for(enough)
    await asyncio.sleep(0.5)  # give any duplicate a chance to appear
    return await runs_of(db, department_id)


async def dispatch(
    cfg: Settings, db: AsyncEngine, department_id: int, events: list[dict], expected: int
) -> list[tuple]:
    """Produce events to the dispatcher's topic and return the department's runs once they are stored."""
    await produce(cfg, cfg.topic_events, events)
    return await count_runs(db, department_id, expected)


async def away_from_minute_boundary() -> None:
    """Per-minute windows are calendar minutes; keep a test's events inside one."""
    second = datetime.now(UTC).second
    if second >= 50:
        await asyncio.sleep(61 - second)


@pytest.fixture
async def dispatcher_settings(settings: Settings) -> Settings:
    return isolated(settings)


class TestIdempotency:
    async def test_same_event_id_twice_creates_one_run_per_workflow(
        self, db, dispatcher_settings, department_id
    ):
        first = await new_workflow(db, department_id)
        second = await new_workflow(db, department_id)
        async with running_services(dispatcher_settings, executor=False, health=False):
            ev = event(department_id, 0)
            await produce(dispatcher_settings, dispatcher_settings.topic_events, [ev, ev])
            rows = await dispatch(dispatcher_settings, db, department_id, [ev], 2)
        assert sorted(r[1] for r in rows) == sorted([first, second])
        assert {r[2] for r in rows} == {ev["EventId"]}

    async def test_event_type_by_name_matches(self, db, dispatcher_settings, department_id):
        workflow = await new_workflow(db, department_id, 3)
        async with running_services(dispatcher_settings, executor=False, health=False):
            rows = await dispatch(
                dispatcher_settings, db, department_id, [event(department_id, "UnitStatusChanged")], 1
            )
        assert [r[1] for r in rows] == [workflow]

    async def test_run_messages_are_produced_for_due_runs(self, db, dispatcher_settings, department_id):
        await new_workflow(db, department_id)
        async with running_services(dispatcher_settings, executor=False, health=False):
            rows = await dispatch(dispatcher_settings, db, department_id, [event(department_id, 0)], 1)
            messages = await consume_all(dispatcher_settings, dispatcher_settings.topic_runs, expect=1)
        assert [orjson.loads(m.value)["RunId"] for m in messages] == [rows[0][0]]
        assert messages[0].key == str(department_id).encode()

        async def published():
            return (await runs_of(db, department_id))[0][5]

        assert await wait_for(published) is not None


class TestReplicas:
    async def test_two_replicas_share_partitions_and_never_duplicate(self, db, dispatcher_settings):
        departments = list(
            range(
                9_000_000 + int(time.time()) % 100_000 * 10, 9_000_000 + int(time.time()) % 100_000 * 10 + 8
            )
        )
        for dep in departments:
            await new_workflow(db, dep)
        async with (
            running_services(dispatcher_settings, executor=False, health=False) as one,
            running_services(dispatcher_settings, executor=False, health=False) as two,
        ):
            events = [event(dep) for dep in departments for _ in range(25)]
            await produce(dispatcher_settings, dispatcher_settings.topic_events, events)

            async def all_stored():
                rows = await fetch(
                    db,
                    "SELECT count(*), count(DISTINCT event_id) FROM workflow_runs "
                    "WHERE department_id = ANY(:d)",
                    d=departments,
                )
                return rows[0] if rows[0][0] >= len(events) else None

            total, distinct = await wait_for(all_stored, timeout=60)
            await asyncio.sleep(1)
            assignments = [len(s["dispatcher"].consumer.assignment()) for s in (one, two)]  # type: ignore[attr-defined]
        rows = await fetch(
            db,
            "SELECT count(*), count(DISTINCT event_id) FROM workflow_runs WHERE department_id = ANY(:d)",
            d=departments,
        )
        assert rows[0] == (len(events), len(events))
        assert all(a > 0 for a in assignments), assignments
        assert sum(assignments) == dispatcher_settings.partitions_events


@asynccontextmanager
async def _six_events_on_the_free_plan(
    db: AsyncEngine, settings: Settings, department_id: int
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Six events at once for a free department's workflow (five runs a minute), early in a minute,
    with the dispatcher running: the six runs' rows while it still runs."""
    await new_workflow(db, department_id, 3)
    await away_from_minute_boundary()
    async with running_services(settings, executor=False, health=False):
        yield await dispatch(settings, db, department_id, [event(department_id, 3) for _ in range(6)], 6)


class TestRateLimits:
    async def test_free_plan_runs_five_per_minute_and_defers_the_sixth(
        self, db, dispatcher_settings, department_id
    ):
        async with _six_events_on_the_free_plan(db, dispatcher_settings, department_id) as rows:
            now_runs = [r for r in rows if r[4] is None]
            later = [r for r in rows if r[4] is not None]
            assert len(now_runs) == 5
            assert len(later) == 1
            assert all(r[3] == 0 for r in rows)  # all Pending: nothing dropped
            deferred_until = later[0][4]
            assert deferred_until.second == 0
            assert deferred_until > datetime.now(UTC)
            assert later[0][5] is None  # not handed to executors yet

    async def test_deferred_run_is_released_when_its_window_opens(
        self, db, dispatcher_settings, department_id
    ):
        async with _six_events_on_the_free_plan(db, dispatcher_settings, department_id) as rows:
            deferred = next(r for r in rows if r[4] is not None)
            # Pretend the next window has opened instead of waiting for it.
            await execute(
                db,
                "UPDATE workflow_runs SET next_attempt_on = now() WHERE workflow_run_id = :r",
                r=deferred[0],
            )

            async def released():
                row = await fetch(
                    db, "SELECT published_on FROM workflow_runs WHERE workflow_run_id = :r", r=deferred[0]
                )
                return row[0][0]

            await wait_for(released, timeout=15)
            messages = await consume_all(dispatcher_settings, dispatcher_settings.topic_runs, expect=5)
        # Any dispatcher replica's scheduler may release it (all share the database); none twice here.
        run_ids = [orjson.loads(m.value)["RunId"] for m in messages]
        assert run_ids.count(deferred[0]) <= 1
        assert len(run_ids) == len(set(run_ids))
        assert set(run_ids) >= {r[0] for r in rows if r[4] is None}

    async def test_paid_plan_exempts_call_events_but_not_others(self, db, dispatcher_settings, department_id):
        await set_plan(db, department_id, "Paid")
        call_workflow = await new_workflow(db, department_id, 0)
        unit_workflow = await new_workflow(db, department_id, 3)
        await away_from_minute_boundary()
        async with running_services(dispatcher_settings, executor=False, health=False):
            events = [event(department_id, 0) for _ in range(70)] + [
                event(department_id, 3) for _ in range(70)
            ]
            rows = await dispatch(dispatcher_settings, db, department_id, events, 140)
        calls = [r for r in rows if r[1] == call_workflow]
        units = [r for r in rows if r[1] == unit_workflow]
        assert sum(r[4] is None for r in calls) == 70
        assert sum(r[4] is None for r in units) == 60
        assert sum(r[4] is not None for r in units) == 10

    async def test_free_plan_has_no_exemption_for_call_events(self, db, dispatcher_settings, department_id):
        await new_workflow(db, department_id, 0)
        await away_from_minute_boundary()
        async with running_services(dispatcher_settings, executor=False, health=False):
            rows = await dispatch(
                dispatcher_settings, db, department_id, [event(department_id, 0) for _ in range(7)], 7
            )
        assert sum(r[4] is None for r in rows) == 5

    async def test_daily_cap_fails_runs_over_fifty_with_a_clear_error(
        self, db, dispatcher_settings, department_id
    ):
        await new_workflow(db, department_id, 3)
        await execute(
            db,
            "INSERT INTO department_daily_usage (department_id, usage_date, channel, used) "
            "VALUES (:d, (now() AT TIME ZONE 'UTC')::date, 'runs', 48)",
            d=department_id,
        )
        async with running_services(dispatcher_settings, executor=False, health=False):
            rows = await dispatch(
                dispatcher_settings, db, department_id, [event(department_id, 3) for _ in range(4)], 4
            )
            outcomes = await consume_all(dispatcher_settings, dispatcher_settings.topic_results, expect=2)
        failed = [r for r in rows if r[3] == 3]
        assert len(failed) == 2
        assert all("Daily run limit" in r[6] and "50 runs per day" in r[6] for r in failed)
        assert all(r[5] is None for r in failed)  # never handed to an executor
        assert sorted(orjson.loads(o.value)["RunId"] for o in outcomes) == sorted(r[0] for r in failed)


class TestPoisonMessages:
    async def test_bad_messages_go_to_the_dlq_and_consumption_continues(
        self, db, dispatcher_settings, department_id
    ):
        workflow = await new_workflow(db, department_id, 0)
        bad = [
            b"{not json",
            orjson.dumps({"DepartmentId": department_id, "EventType": 0}),  # no EventId
            orjson.dumps(event(department_id, 99)),
            orjson.dumps(event(department_id, "NoSuchEvent")),
            orjson.dumps({**event(department_id, 0), "DepartmentId": "abc"}),
            orjson.dumps(event(department_id, 0, payload={"blob": "x" * (1024 * 1024 + 10)})),
            b"\xff\xfe\x00garbage",
            orjson.dumps([1, 2, 3]),
        ]
        good = event(department_id, 0)
        async with running_services(dispatcher_settings, executor=False, health=False):
            await produce(dispatcher_settings, dispatcher_settings.topic_events, bad, key=b"x")
            rows = await dispatch(dispatcher_settings, db, department_id, [good], 1)
            dead = await consume_all(dispatcher_settings, dispatcher_settings.topic_dlq, expect=len(bad))
        assert [(r[1], r[2]) for r in rows] == [(workflow, good["EventId"])]
        assert len(dead) == len(bad)
        reasons = [dict(m.headers)["wf-dlq-reason"].decode() for m in dead]
        assert any("not valid UTF-8 JSON" in r for r in reasons)
        assert any("EventId: is required" in r for r in reasons)
        assert any("over the 1048576-byte limit" in r for r in reasons)
        assert all("wf-original-offset" in dict(m.headers) for m in dead)
        assert sorted(m.value for m in dead) == sorted(bad)


class TestMatchingIndex:
    async def test_workflow_created_or_disabled_through_the_api_applies_within_a_second(
        self, db, dispatcher_settings, api: httpx.AsyncClient, department_id
    ):
        async with running_services(dispatcher_settings, executor=False, health=False):
            created = await api.post("/api/v4/workflows", json={"Name": "Pager", "TriggerEventType": 9})
            assert created.status_code == 200, created.text
            workflow_id = created.json()["WorkflowId"]
            await asyncio.sleep(1.0)
            first = event(department_id, 9)
            rows = await dispatch(dispatcher_settings, db, department_id, [first], 1)
            assert [r[1] for r in rows] == [workflow_id]

            await execute(db, "UPDATE workflows SET is_enabled = false WHERE workflow_id = :w", w=workflow_id)
            await asyncio.sleep(1.0)
            await produce(dispatcher_settings, dispatcher_settings.topic_events, [event(department_id, 9)])
            marker = await new_workflow(db, department_id + 1_000_000, 9)
            await asyncio.sleep(1.0)
            await produce(
                dispatcher_settings, dispatcher_settings.topic_events, [event(department_id + 1_000_000, 9)]
            )
            await count_runs(db, department_id + 1_000_000, 1)  # the later event was processed...
        assert len(await runs_of(db, department_id)) == 1  # ...and the disabled workflow got no run
        assert marker
