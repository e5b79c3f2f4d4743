"""Plan limits on sends, end to end: recipient caps and daily email/SMS limits on both plans, and the
HTML an email carries sanitised."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from shared.enums import ActionType, CredentialType, RunStatus
from tests.executor.conftest import Pipeline, smtp_data
from tests.peers.https_server import HttpsPeer, Reply
from tests.peers.smtp_server import SmtpPeer

SID = "AC0123456789abcdef0123456789abcdef"
TWILIO_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"


def email_step(
    credential_id: int,
    order: int = 1,
    *,
    to: str = "chief@example.org",
    cc: str | None = None,
    template: str = "{{ call.name }} at {{ call.address }}",
) -> dict[str, Any]:
    config = {"to": to, "subject": "Call {{ call.id }}", **({"cc": cc} if cc else {})}
    return {
        "ActionType": int(ActionType.SendEmail),
        "StepOrder": order,
        "OutputTemplate": template,
        "ActionConfig": config,
        "WorkflowCredentialId": credential_id,
    }


def sms_step(credential_id: int, order: int = 1, *, to: str = "+15551230001") -> dict[str, Any]:
    return {
        "ActionType": int(ActionType.SendSms),
        "StepOrder": order,
        "OutputTemplate": "{{ call.name }}",
        "ActionConfig": {"to": to},
        "WorkflowCredentialId": credential_id,
    }


async def twilio_credential(pipeline: Pipeline, department_id: int) -> int:
    return await pipeline.credential(
        department_id,
        CredentialType.Twilio,
        {"accountSid": SID, "authToken": "twilio-token-123", "fromNumber": "+15550001111"},
    )


@pytest.fixture
async def twilio(https_peer: HttpsPeer, twilio_at: Callable[[HttpsPeer], None]) -> HttpsPeer:
    https_peer.reply("POST", TWILIO_PATH, Reply(201, {"sid": "SM1", "status": "queued"}))
    twilio_at(https_peer)
    return https_peer


def sms_recipients(peer: HttpsPeer) -> list[str]:
    return [parse_qs(r.body.decode())["To"][0] for r in peer.requests_to("POST", TWILIO_PATH)]


async def test_free_plan_sends_ten_emails_a_day_and_refuses_the_eleventh(
    api: httpx.AsyncClient, pipeline: Pipeline, smtp_peer: SmtpPeer, department_id: int
) -> None:
    credential_id = await pipeline.credential(department_id, CredentialType.Smtp, smtp_data(smtp_peer))
    workflow_id, _ = await pipeline.workflow(api, email_step(credential_id))

    runs = [await pipeline.start_run(workflow_id, department_id) for _ in range(11)]
    finished = await asyncio.gather(*(pipeline.wait_status(run_id) for run_id in runs))

    statuses = sorted(run["status"] for run in finished)
    assert statuses == [RunStatus.Completed] * 10 + [RunStatus.Failed]
    [refused] = [run for run in finished if run["status"] == RunStatus.Failed]
    assert refused["error_message"] == (
        "Step 1 (SendEmail) failed: Daily send limit reached: the Free plan allows 10 emails per day"
    )
    assert refused["attempt_number"] == 1
    assert refused["next_attempt_on"] is None
    assert len(smtp_peer.messages) == 10


@pytest.mark.parametrize(
    ("plan", "channel", "cap"), [("Paid", "email", 500), ("Free", "sms", 5), ("Paid", "sms", 200)]
)
async def test_daily_limit_is_reached_mid_run(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    smtp_peer: SmtpPeer,
    twilio: HttpsPeer,
    department_id: int,
    plan: str,
    channel: str,
    cap: int,
) -> None:
    await pipeline.set_plan(api, department_id, plan)
    await pipeline.use_today(department_id, channel, cap - 1)  # sent earlier today
    if channel == "email":
        credential_id = await pipeline.credential(department_id, CredentialType.Smtp, smtp_data(smtp_peer))
        steps = [email_step(credential_id, 1), email_step(credential_id, 2)]
        noun = "emails"
    else:
        credential_id = await twilio_credential(pipeline, department_id)
        steps = [sms_step(credential_id, 1), sms_step(credential_id, 2)]
        noun = "SMS messages"
    workflow_id, _ = await pipeline.workflow(api, *steps)

    run = await pipeline.wait_status(await pipeline.start_run(workflow_id, department_id))

    assert run["status"] == RunStatus.Failed
    kind = "SendEmail" if channel == "email" else "SendSms"
    assert run["error_message"] == (
        f"Step 2 ({kind}) failed: Daily send limit reached: the {plan} plan allows {cap} {noun} per day"
    )
    sent = len(smtp_peer.messages) if channel == "email" else len(sms_recipients(twilio))
    assert sent == 1


@pytest.mark.parametrize(
    ("plan", "delivered", "left_out"),
    [
        (
            "Free",
            ["a1@example.org"],
            "(a2@example.org, a3@example.org, c1@example.org, c2@example.org left out: "
            "free plan allows 1 recipient and no CC)",
        ),
        (
            "Paid",
            [f"a{i}@example.org" for i in range(1, 10)] + ["c1@example.org"],
            "(c2@example.org left out: paid plan allows 10 recipients)",
        ),
    ],
)
async def test_email_recipients_are_capped_by_plan(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    smtp_peer: SmtpPeer,
    department_id: int,
    plan: str,
    delivered: list[str],
    left_out: str,
) -> None:
    await pipeline.set_plan(api, department_id, plan)
    credential_id = await pipeline.credential(department_id, CredentialType.Smtp, smtp_data(smtp_peer))
    to = ", ".join(f"a{i}@example.org" for i in range(1, 10 if plan == "Paid" else 4))
    workflow_id, (step_id,) = await pipeline.workflow(
        api, email_step(credential_id, to=to, cc="c1@example.org, c2@example.org")
    )

    run_id = await pipeline.start_run(workflow_id, department_id)
    run = await pipeline.wait_status(run_id)

    assert run["status"] == RunStatus.Completed
    assert smtp_peer.recipients == delivered
    [log] = await pipeline.logs(run_id)
    assert log["action_result"].endswith(left_out)
    [mail] = smtp_peer.messages
    assert mail.message["Message-ID"] == f"<wf-run-{run_id}-step-{step_id}@dept.example.org>"


@pytest.mark.parametrize(("plan", "sent"), [("Free", 1), ("Paid", 5)])
async def test_sms_recipients_are_capped_by_plan(
    api: httpx.AsyncClient, pipeline: Pipeline, twilio: HttpsPeer, department_id: int, plan: str, sent: int
) -> None:
    await pipeline.set_plan(api, department_id, plan)
    numbers = [f"+1555123000{i}" for i in range(1, 7)]
    credential_id = await twilio_credential(pipeline, department_id)
    workflow_id, _ = await pipeline.workflow(api, sms_step(credential_id, to=", ".join(numbers)))

    run_id = await pipeline.start_run(workflow_id, department_id)
    run = await pipeline.wait_status(run_id)

    assert run["status"] == RunStatus.Completed
    assert sms_recipients(twilio) == numbers[:sent]
    [log] = await pipeline.logs(run_id)
    assert log["action_result"].startswith(f"SMS sent to {sent} recipient(s)")
    assert ", ".join(numbers[sent:]) + " left out" in log["action_result"]


async def test_email_html_is_sanitised(
    api: httpx.AsyncClient, pipeline: Pipeline, smtp_peer: SmtpPeer, department_id: int
) -> None:
    credential_id = await pipeline.credential(department_id, CredentialType.Smtp, smtp_data(smtp_peer))
    template = (
        "<p>{{ call.name }}</p><script>steal(document.cookie)</script>"
        '<a href="javascript:evil()">map</a><img src="x" onerror="evil()">'
        '<iframe src="https://evil.example"></iframe><a href="https://maps.example/1">route</a>'
    )
    workflow_id, _ = await pipeline.workflow(api, email_step(credential_id, template=template))

    run = await pipeline.wait_status(await pipeline.start_run(workflow_id, department_id))

    assert run["status"] == RunStatus.Completed
    [mail] = smtp_peer.messages
    html = mail.part("text/html")
    assert "<p>Structure Fire</p>" in html
    assert 'href="https://maps.example/1"' in html
    for bad in ("<script", "steal(", "javascript:", "onerror", "<iframe"):
        assert bad not in html
    assert "steal(" not in mail.part("text/plain")
