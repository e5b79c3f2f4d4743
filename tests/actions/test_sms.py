"""SendSms against an HTTPS peer standing in for the Twilio REST API."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs

import pytest

from services.executor.actions.base import ActionError
from services.executor.registry import ACTIONS
from shared.actions.sms import MAX_SMS_CHARS, TRUNCATION_SUFFIX, prepare_sms_body
from shared.enums import ActionType, Plan
from tests.actions.conftest import RecordingQuota, make_ctx, make_deps
from tests.peers.https_server import HttpsPeer, Reply

send_sms = ACTIONS[ActionType.SendSms]
SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-auth-token-123"
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"


def sms_ctx(to: str, *, plan: Plan = Plan.Paid, content: str = "Structure fire at 1 Main St", **cred: Any):
    credential = {"accountSid": SID, "authToken": TOKEN, "fromNumber": "+15550001111", **cred}
    return make_ctx(ActionType.SendSms, config={"to": to}, credential=credential, content=content, plan=plan)


def sms_deps(peer: HttpsPeer, quota: RecordingQuota | None = None):
    return make_deps(quota=quota, twilio_base_url=peer.url(""))


def form(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body.decode()).items()}


def created(sid: str) -> Reply:
    return Reply(201, {"sid": sid, "status": "queued"})


async def test_sends_one_message_per_recipient_with_auth_and_idempotency(https_peer: HttpsPeer) -> None:
    https_peer.reply("POST", PATH, created("SM1"), created("SM2"))
    quota = RecordingQuota()
    result = await send_sms(sms_ctx("+15551230001, +15551230002"), sms_deps(https_peer, quota))

    assert result.message == "SMS sent to 2 recipient(s). Last SID: SM2"
    requests = https_peer.requests_to("POST", PATH)
    assert [form(r) for r in requests] == [
        {"To": "+15551230001", "From": "+15550001111", "Body": "Structure fire at 1 Main St"},
        {"To": "+15551230002", "From": "+15550001111", "Body": "Structure fire at 1 Main St"},
    ]
    expected_auth = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert all(r.headers["authorization"] == expected_auth for r in requests)
    assert [r.headers["i-twilio-idempotency-token"] for r in requests] == [
        "wf-run-41-step-7-0",
        "wf-run-41-step-7-1",
    ]
    assert quota.reserved == [2]
    assert quota.released == []


async def test_messaging_service_sid_replaces_from(https_peer: HttpsPeer) -> None:
    await send_sms(sms_ctx("+15551230001", messagingServiceSid="MG123"), sms_deps(https_peer))
    [request] = https_peer.requests
    assert form(request)["MessagingServiceSid"] == "MG123"
    assert "From" not in form(request)


@pytest.mark.parametrize(
    ("plan", "sent", "note"),
    [
        (
            Plan.Free,
            1,
            "+15551230002, +15551230003, +15551230004, +15551230005, +15551230006, +15551230007 left out: free plan allows 1 recipient",
        ),
        (Plan.Paid, 5, "+15551230006, +15551230007 left out: paid plan allows 5 recipients"),
    ],
)
async def test_recipient_caps(https_peer: HttpsPeer, plan: Plan, sent: int, note: str) -> None:
    to = ",".join(f"+1555123000{i}" for i in range(1, 8))
    quota = RecordingQuota()
    result = await send_sms(sms_ctx(to, plan=plan), sms_deps(https_peer, quota))
    assert [form(r)["To"] for r in https_peer.requests] == [f"+1555123000{i}" for i in range(1, sent + 1)]
    assert result.message.endswith(f"({note})")
    assert quota.reserved == [sent]


async def test_unauthorised_is_permanent_and_hides_the_token(https_peer: HttpsPeer) -> None:
    https_peer.reply("POST", PATH, Reply(401, {"code": 20003, "message": f"Authenticate {TOKEN}"}))
    quota = RecordingQuota()
    with pytest.raises(ActionError) as caught:
        await send_sms(sms_ctx("+15551230001"), sms_deps(https_peer, quota))
    assert caught.value.permanent
    assert "20003" in caught.value.message
    assert TOKEN not in caught.value.message
    assert quota.net == 0


async def test_unavailable_is_transient_with_retry_after(https_peer: HttpsPeer) -> None:
    https_peer.reply("POST", PATH, Reply(503, "busy", headers={"Retry-After": "7"}))
    with pytest.raises(ActionError) as caught:
        await send_sms(sms_ctx("+15551230001"), sms_deps(https_peer))
    assert not caught.value.permanent
    assert caught.value.retry_after == 7


async def test_partial_failure_names_the_sent_and_a_retry_reuses_their_tokens(https_peer: HttpsPeer) -> None:
    https_peer.reply(
        "POST", PATH, created("SM1"), Reply(500, {"message": "oops"}), created("SM1"), created("SM2")
    )
    quota = RecordingQuota()
    ctx = sms_ctx("+15551230001,+15551230002")
    with pytest.raises(ActionError) as caught:
        await send_sms(ctx, sms_deps(https_peer, quota))
    assert not caught.value.permanent
    assert "already sent to +15551230001" in caught.value.message
    assert quota.net == 1  # only the delivered message counts

    await send_sms(ctx, sms_deps(https_peer, quota))
    tokens = [r.headers["i-twilio-idempotency-token"] for r in https_peer.requests]
    assert tokens == ["wf-run-41-step-7-0", "wf-run-41-step-7-1", "wf-run-41-step-7-0", "wf-run-41-step-7-1"]


async def test_body_is_normalised_to_gsm_and_truncated(https_peer: HttpsPeer) -> None:
    content = "\u201cFire\u201d \u2013 it\u2019s\u00a0big\u2026 " + "x" * 600
    await send_sms(sms_ctx("+15551230001", content=content), sms_deps(https_peer))
    body = form(https_peer.requests[0])["Body"]
    assert body.startswith('"Fire" - it\'s big... xxx')
    assert len(body) == MAX_SMS_CHARS
    assert body.endswith(TRUNCATION_SUFFIX)
    assert prepare_sms_body("short") == "short"


@pytest.mark.parametrize(
    ("to", "content", "cred", "expected"),
    [
        ("555-1234", "hi", {}, "Not E.164"),
        ("+15551230001", "   ", {}, "empty"),
        ("+15551230001", "hi", {"fromNumber": None}, "'fromNumber' or 'messagingServiceSid'"),
        ("+15551230001", "hi", {"authToken": None}, "missing 'authToken'"),
    ],
)
async def test_invalid_input_is_permanent_without_a_request(
    https_peer: HttpsPeer, to: str, content: str, cred: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ActionError) as caught:
        await send_sms(sms_ctx(to, content=content, **cred), sms_deps(https_peer))
    assert caught.value.permanent
    assert expected in caught.value.message
    assert https_peer.requests == []
