"""Retries: exact backoff, only unfinished steps repeated, Retry-After honoured, exhaustion, and the
errors that must fail at once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from shared.enums import ActionType, CredentialType, RunStatus
from tests.executor.conftest import Pipeline, http_step, smtp_data, wait_for
from tests.peers.https_server import HttpsPeer, Reply
from tests.peers.smtp_server import SmtpPeer
from tests.peers.tls import LocalCA

JITTER = 0.10
SLACK = timedelta(milliseconds=750)  # database round trips between the log row and the run's update


async def watch_retries(pipeline: Pipeline, run_id: int) -> tuple[Any, dict[int, datetime]]:
    """Follow the run to its end; returns the final row and each scheduled attempt's NextAttemptOn."""
    scheduled: dict[int, datetime] = {}

    async def until_final() -> Any:
        row = await pipeline.run(run_id)
        if row["status"] == RunStatus.Retrying:
            scheduled[row["attempt_number"]] = row["next_attempt_on"]
        return row if row["status"] in (RunStatus.Completed, RunStatus.Failed, RunStatus.Cancelled) else None

    final = await wait_for(until_final, interval=0.02, what=f"run {run_id} to finish")
    return final, scheduled


def assert_backoff(
    logs: list[Any], scheduled: dict[int, datetime], base: float, retry_after: float | None = None
) -> None:
    """Attempt n+1 was scheduled base × 2^(n−1) (+ ≤10 % jitter) after attempt n, and did not start earlier."""
    for attempt, next_on in scheduled.items():
        failed_at = max(log["completed_on"] for log in logs if log["attempt_number"] == attempt - 1)
        delay = base * 2 ** (attempt - 2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        assert failed_at + timedelta(seconds=delay) <= next_on, (attempt, next_on - failed_at)
        assert next_on <= failed_at + timedelta(seconds=delay * (1 + JITTER)) + SLACK, (
            attempt,
            next_on - failed_at,
        )
        started = min(log["started_on"] for log in logs if log["attempt_number"] == attempt)
        assert started >= next_on


async def test_transient_failures_retry_with_backoff_and_repeat_only_the_unfinished_step(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    workflow_id, (done, flaky) = await pipeline.workflow(
        api,
        http_step(https_peer, "/done", order=1),
        http_step(https_peer, "/flaky", order=2),
        max_retries=3,
        backoff_s=1,
    )
    https_peer.reply("POST", "/flaky", Reply(503, "busy"), Reply(503, "busy"), Reply(200, {"ok": True}))

    run_id = await pipeline.start_run(workflow_id, department_id)
    run, scheduled = await watch_retries(pipeline, run_id)

    assert run["status"] == RunStatus.Completed
    assert run["attempt_number"] == 3
    assert run["error_message"] is None
    assert run["next_attempt_on"] is None
    assert len(https_peer.requests_to("POST", "/done")) == 1  # completed on attempt 1, never repeated
    flaky_requests = https_peer.requests_to("POST", "/flaky")
    assert len(flaky_requests) == 3
    assert {r.headers["idempotency-key"] for r in flaky_requests} == {f"wf-run-{run_id}-step-{flaky}"}

    logs = await pipeline.logs(run_id)
    assert [(log["workflow_step_id"], log["attempt_number"], log["status"]) for log in logs] == [
        (done, 1, RunStatus.Completed),
        (flaky, 1, RunStatus.Failed),
        (flaky, 2, RunStatus.Failed),
        (flaky, 3, RunStatus.Completed),
    ]
    assert "503" in logs[1]["error_message"]
    assert sorted(scheduled) == [2, 3]
    assert_backoff(logs, scheduled, base=1)
    outcome = await pipeline.results.outcome(run_id)
    assert (outcome["Status"], outcome["AttemptNumber"]) == (RunStatus.Completed, 3)
    assert len(pipeline.results.by_run[run_id]) == 1  # no outcome for the intermediate attempts


async def test_retries_exhausted_fail_the_run_with_the_last_error(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    workflow_id, _ = await pipeline.workflow(
        api, http_step(https_peer, "/down", order=1), max_retries=2, backoff_s=1
    )
    https_peer.reply("POST", "/down", Reply(502, "bad gateway"), Reply(503, "still down"))

    run_id = await pipeline.start_run(workflow_id, department_id)
    run, scheduled = await watch_retries(pipeline, run_id)

    assert run["status"] == RunStatus.Failed
    assert run["attempt_number"] == 3  # the first attempt and MaxRetryCount = 2 retries
    assert len(https_peer.requests_to("POST", "/down")) == 3
    assert run["error_message"].startswith("Step 1 (CallApiPost) failed: ")
    assert "503" in run["error_message"]
    assert "still down" in run["error_message"]
    assert run["error_message"].endswith("gave up after 3 attempt(s)")
    logs = await pipeline.logs(run_id)
    assert [log["attempt_number"] for log in logs] == [1, 2, 3]
    assert_backoff(logs, scheduled, base=1)
    outcome = await pipeline.results.outcome(run_id)
    assert (outcome["Status"], outcome["AttemptNumber"]) == (RunStatus.Failed, 3)
    assert outcome["ErrorMessage"] == run["error_message"]


async def test_retry_after_on_429_delays_the_next_attempt(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    workflow_id, _ = await pipeline.workflow(api, http_step(https_peer, "/limited", order=1), backoff_s=1)
    https_peer.reply("POST", "/limited", Reply(429, "slow down", headers={"Retry-After": "2"}), Reply(200))

    run_id = await pipeline.start_run(workflow_id, department_id)
    run, scheduled = await watch_retries(pipeline, run_id)

    assert run["status"] == RunStatus.Completed
    assert run["attempt_number"] == 2
    first, second = https_peer.requests_to("POST", "/limited")
    assert sorted(scheduled) == [2]
    logs = await pipeline.logs(run_id)
    assert_backoff(logs, scheduled, base=1, retry_after=2)
    assert logs[1]["started_on"] - logs[0]["completed_on"] >= timedelta(seconds=2)


async def test_a_huge_retry_after_is_bounded_and_the_executor_moves_on(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    workflow_id, _ = await pipeline.workflow(
        api,
        http_step(https_peer, "/overloaded", order=1),
        http_step(https_peer, "/fine", order=2),
        backoff_s=1,
    )
    https_peer.reply("POST", "/overloaded", Reply(503, "maintenance", headers={"Retry-After": "86400"}))

    waiting = await pipeline.start_run(workflow_id, department_id)
    run = await pipeline.wait_status(waiting, RunStatus.Retrying)
    attempt_ended = max(log["completed_on"] for log in await pipeline.logs(waiting))
    # Not a day: the executor's bound (ActionSection.max_retry_after_s, 10 minutes).
    assert run["next_attempt_on"] - attempt_ended <= timedelta(seconds=600) + SLACK
    assert run["next_attempt_on"] - attempt_ended >= timedelta(seconds=600)
    # Nothing sleeps on the waiting run: the next one goes straight through.
    https_peer.reply("POST", "/overloaded", Reply(200))
    other = await pipeline.wait_status(await pipeline.start_run(workflow_id, department_id))
    assert other["status"] == RunStatus.Completed
    assert (await pipeline.run(waiting))["status"] == RunStatus.Retrying
    await pipeline.cancel(waiting)


async def test_a_permanent_failure_is_not_undone_by_a_later_successful_retry(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    workflow_id, (gone, flaky) = await pipeline.workflow(
        api, http_step(https_peer, "/gone", order=1), http_step(https_peer, "/flaky", order=2), backoff_s=1
    )
    https_peer.reply("POST", "/gone", Reply(404, "no such thing"))
    https_peer.reply("POST", "/flaky", Reply(503), Reply(200))

    run_id = await pipeline.start_run(workflow_id, department_id)
    run, _ = await watch_retries(pipeline, run_id)

    assert run["status"] == RunStatus.Failed
    assert len(https_peer.requests_to("POST", "/gone")) == 1  # permanent: not repeated by the retry
    assert len(https_peer.requests_to("POST", "/flaky")) == 2
    assert run["error_message"].startswith("Step 1 (CallApiPost) failed: ")
    assert "404" in run["error_message"]


# --- errors that cannot succeed on retry -------------------------------------------------------------


async def assert_failed_at_once(pipeline: Pipeline, run_id: int, *fragments: str) -> None:
    run = await pipeline.wait_status(run_id)
    assert run["status"] == RunStatus.Failed
    assert run["attempt_number"] == 1
    assert run["next_attempt_on"] is None
    for fragment in fragments:
        assert fragment in run["error_message"]
    assert "gave up" not in run["error_message"]
    logs = await pipeline.logs(run_id)
    assert [(log["attempt_number"], log["status"]) for log in logs] == [(1, RunStatus.Failed)]
    for fragment in fragments:
        assert fragment in logs[0]["error_message"]
    outcome = await pipeline.results.outcome(run_id)
    assert outcome["Status"] == RunStatus.Failed


async def test_http_404_fails_without_retry(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    workflow_id, _ = await pipeline.workflow(api, http_step(https_peer, "/missing", order=1), backoff_s=1)
    https_peer.reply("POST", "/missing", Reply(404, "Not Found"))

    run_id = await pipeline.start_run(workflow_id, department_id)
    await assert_failed_at_once(pipeline, run_id, "404")
    assert len(https_peer.requests_to("POST", "/missing")) == 1


def email_step(credential_id: int, **config: Any) -> dict[str, Any]:
    return {
        "ActionType": int(ActionType.SendEmail),
        "StepOrder": 1,
        "OutputTemplate": "{{ call.name }} at {{ call.address }}",
        "ActionConfig": {"to": "chief@example.org", "subject": "Call {{ call.id }}", **config},
        "WorkflowCredentialId": credential_id,
    }


async def test_smtp_550_fails_without_retry(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int
) -> None:
    async with SmtpPeer(reject_recipients="all") as smtp:
        credential_id = await pipeline.credential(department_id, CredentialType.Smtp, smtp_data(smtp))
        workflow_id, _ = await pipeline.workflow(api, email_step(credential_id), backoff_s=1)
        run_id = await pipeline.start_run(workflow_id, department_id)
        await assert_failed_at_once(pipeline, run_id, "550", "chief@example.org")
        assert smtp.messages == []


async def test_smtp_wrong_password_fails_without_retry(
    api: httpx.AsyncClient, pipeline: Pipeline, local_ca: LocalCA, department_id: int
) -> None:
    async with SmtpPeer(ca=local_ca, security="tls", username="mailer", password="right") as smtp:
        credential_id = await pipeline.credential(
            department_id,
            CredentialType.Smtp,
            smtp_data(smtp, security="tls", username="mailer", password="wrong-password"),
        )
        workflow_id, _ = await pipeline.workflow(api, email_step(credential_id), backoff_s=1)
        run_id = await pipeline.start_run(workflow_id, department_id)
        await assert_failed_at_once(pipeline, run_id, "rejected the login for user mailer")
        assert smtp.messages == []
        run = await pipeline.run(run_id)
        assert "wrong-password" not in run["error_message"]


async def test_template_error_fails_without_retry(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int
) -> None:
    workflow_id, _ = await pipeline.workflow(
        api,
        http_step(https_peer, "/never", order=1, template="Units: {{ call.priority | divided_by: 0 }}"),
        backoff_s=1,
    )
    run_id = await pipeline.start_run(workflow_id, department_id)
    await assert_failed_at_once(pipeline, run_id, "OutputTemplate: line 1, column", "divided_by")
    assert https_peer.requests == []


async def test_deleted_credential_fails_naming_it(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int
) -> None:
    async with SmtpPeer() as smtp:
        credential_id = await pipeline.credential(department_id, CredentialType.Smtp, smtp_data(smtp))
        workflow_id, _ = await pipeline.workflow(api, email_step(credential_id), backoff_s=1)
        async with pipeline.db.begin() as conn:
            await conn.execute(
                text("DELETE FROM workflow_credentials WHERE workflow_credential_id = :c"),
                {"c": credential_id},
            )
        run_id = await pipeline.start_run(workflow_id, department_id)
        await assert_failed_at_once(pipeline, run_id, f"Credential {credential_id}", "deleted")
        assert smtp.sessions == 0


async def test_credential_of_another_department_is_never_used(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int
) -> None:
    async with SmtpPeer() as smtp:
        foreign = await pipeline.credential(department_id + 1_000_000, CredentialType.Smtp, smtp_data(smtp))
        workflow_id, _ = await pipeline.workflow(api, name="Borrowing")
        await pipeline.insert_step(
            workflow_id,
            action_type=int(ActionType.SendEmail),
            step_order=1,
            template="hello",
            config={"to": "chief@example.org", "subject": "x"},
            credential_id=foreign,
        )
        run_id = await pipeline.start_run(workflow_id, department_id)
        await assert_failed_at_once(
            pipeline, run_id, f"Credential {foreign}", "not available to this department"
        )
        assert smtp.sessions == 0


@pytest.mark.parametrize("status", [408, 425, 500])
async def test_retryable_statuses_are_retried(
    api: httpx.AsyncClient, pipeline: Pipeline, https_peer: HttpsPeer, department_id: int, status: int
) -> None:
    workflow_id, _ = await pipeline.workflow(api, http_step(https_peer, "/odd", order=1), backoff_s=1)
    https_peer.reply("POST", "/odd", Reply(status), Reply(200))
    run_id = await pipeline.start_run(workflow_id, department_id)
    run = await pipeline.wait_status(run_id)
    assert (run["status"], run["attempt_number"]) == (RunStatus.Completed, 2)
    assert len(https_peer.requests_to("POST", "/odd")) == 2
