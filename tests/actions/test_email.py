"""SendEmail against a real SMTP server on loopback (plain, STARTTLS, implicit TLS, AUTH, failures)."""

from __future__ import annotations

import socket
from typing import Any, Literal

import pytest

from services.executor.actions.base import ActionContext, ActionDeps, ActionError, ActionResult
from services.executor.egress import EgressGuard
from services.executor.registry import ACTIONS
from shared.actions.configs import ActionConfigError, coerce_rendered
from shared.credential_types import CredentialValidationError, validate_credential_data
from shared.enums import ActionType, CredentialType, Plan
from tests.actions.conftest import RecordingQuota, make_ctx, make_deps
from tests.peers.smtp_server import SmtpPeer
from tests.peers.tls import LocalCA


def smtp_credential(peer: SmtpPeer, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "host": "mail.example.org",
        "port": peer.port,
        "security": peer.security,
        "fromAddress": "alerts@dept.example.org",
        "fromName": "Station 5",
    }
    data.update(overrides)
    return data


def email_ctx(
    peer: SmtpPeer,
    *,
    config: dict[str, Any] | None = None,
    credential: dict[str, Any] | None = None,
    **kw: Any,
):
    """The context the engine builds: the rendered config checked (and given its defaults) first."""
    rendered = config or {"to": "chief@example.org", "subject": "Structure fire"}
    checked = coerce_rendered(ActionType.SendEmail, rendered, has_credential=True)
    return make_ctx(
        ActionType.SendEmail, config=checked, credential=credential or smtp_credential(peer), **kw
    )


async def send_email(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    return await ACTIONS[ActionType.SendEmail](ctx, deps)


async def test_plain_smtp_delivers_a_multipart_message_with_stable_headers(local_ca: LocalCA) -> None:
    async with SmtpPeer() as peer:
        quota = RecordingQuota()
        ctx = email_ctx(
            peer,
            config={
                "to": "chief@example.org",
                "subject": "Structure\r\nBcc: x@evil.test fire",
                "replyTo": "desk@example.org",
            },
            content="Engine 5 respond\nto 1 Main St <b>now</b>",
        )
        result = await send_email(ctx, make_deps(quota=quota))

    assert result.message == "Email sent to chief@example.org"
    [mail] = peer.messages
    assert mail.rcpt_tos == ["chief@example.org"]
    assert mail.mail_from == "alerts@dept.example.org"
    msg = mail.message
    assert msg["From"] == "Station 5 <alerts@dept.example.org>"
    assert msg["Subject"] == "Structure Bcc: x@evil.test fire"  # no header injection
    assert msg["Bcc"] is None
    assert msg["Reply-To"] == "desk@example.org"
    assert msg["Message-ID"] == "<wf-run-41-step-7@dept.example.org>"
    assert msg["X-Workflow-Run"] == "41"
    assert mail.part("text/plain").strip() == "Engine 5 respond\nto 1 Main St <b>now</b>"
    html = mail.part("text/html")
    assert "Engine 5 respond<br>" in html
    assert "&lt;b&gt;now&lt;/b&gt;" in html
    assert quota.reserved == [1]
    assert quota.released == []


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_with_login(local_ca: LocalCA, security: Literal["starttls", "tls"]) -> None:
    async with SmtpPeer(ca=local_ca, security=security, username="mailer", password="s3cret") as peer:
        cred = smtp_credential(peer, username="mailer", password="s3cret")
        await send_email(email_ctx(peer, credential=cred), make_deps())
    [mail] = peer.messages
    assert mail.over_tls
    assert mail.login == "mailer"


async def test_legacy_use_ssl_means_starttls(local_ca: LocalCA) -> None:
    async with SmtpPeer(ca=local_ca, security="starttls") as peer:
        cred = smtp_credential(peer, useSsl=True)
        del cred["security"]
        await send_email(email_ctx(peer, credential=cred), make_deps())
    assert peer.messages[0].over_tls


async def test_untrusted_certificate_is_permanent_and_sends_nothing(local_ca: LocalCA) -> None:
    async with SmtpPeer(ca=local_ca, security="starttls", hostnames=("mail.other.test",)) as peer:
        with pytest.raises(ActionError) as caught:
            await send_email(email_ctx(peer), make_deps())
    assert caught.value.permanent
    assert "certificate" in caught.value.message
    assert peer.messages == []


async def test_wrong_password_is_permanent_and_releases_quota(local_ca: LocalCA) -> None:
    quota = RecordingQuota()
    async with SmtpPeer(ca=local_ca, security="starttls", username="mailer", password="s3cret") as peer:
        cred = smtp_credential(peer, username="mailer", password="wrong-password")
        with pytest.raises(ActionError) as caught:
            await send_email(email_ctx(peer, credential=cred), make_deps(quota=quota))
    assert caught.value.permanent
    assert "wrong-password" not in caught.value.message
    assert peer.messages == []
    assert quota.reserved == [1]
    assert quota.released == [1]


async def test_recipient_rejected_with_550_is_permanent() -> None:
    async with SmtpPeer(reject_recipients="all") as peer:
        with pytest.raises(ActionError) as caught:
            await send_email(email_ctx(peer), make_deps())
    assert caught.value.permanent
    assert "550" in caught.value.message
    assert peer.messages == []


async def test_one_rejected_recipient_is_named_and_the_others_receive() -> None:
    quota = RecordingQuota()
    async with SmtpPeer(reject_recipients={"gone@example.org"}) as peer:
        ctx = email_ctx(peer, config={"to": "a@example.org, gone@example.org", "subject": "s"})
        result = await send_email(ctx, make_deps(quota=quota))
    assert peer.recipients == ["a@example.org"]
    assert result.message.startswith(
        "Email sent to a@example.org (refused by the server: gone@example.org: 550"
    )
    assert quota.net == 1


async def test_temporary_failure_is_transient() -> None:
    quota = RecordingQuota()
    async with SmtpPeer(temporary_failure=True) as peer:
        with pytest.raises(ActionError) as caught:
            await send_email(email_ctx(peer), make_deps(quota=quota))
    assert not caught.value.permanent
    assert "451" in caught.value.message
    assert quota.net == 0


async def test_connection_refused_is_transient() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    quota = RecordingQuota()
    ctx = make_ctx(
        ActionType.SendEmail,
        config={"to": "a@example.org", "subject": "s"},
        credential={
            "host": "mail.example.org",
            "port": port,
            "security": "none",
            "fromAddress": "x@example.org",
        },
    )
    with pytest.raises(ActionError) as caught:
        await send_email(ctx, make_deps(quota=quota))
    assert not caught.value.permanent
    assert quota.net == 0


async def test_blocked_smtp_host_is_permanent_without_connecting() -> None:
    async with SmtpPeer() as peer:
        # the name resolves (to loopback), but no CIDR allows loopback: a policy refusal
        guard = EgressGuard(host_overrides={"mail.example.org": f"127.0.0.1:{peer.port}"})
        with pytest.raises(ActionError) as caught:
            await send_email(email_ctx(peer), make_deps(guard))
    assert caught.value.permanent
    assert "egress" in caught.value.message
    assert peer.sessions == 0


async def test_unresolvable_smtp_host_is_transient() -> None:
    async with SmtpPeer() as peer:
        with pytest.raises(ActionError) as caught:
            await send_email(email_ctx(peer), make_deps(EgressGuard(allow_cidrs=["127.0.0.0/8"])))
    assert not caught.value.permanent
    assert "could not resolve" in caught.value.message
    assert peer.sessions == 0


async def test_free_plan_sends_to_the_first_recipient_only() -> None:
    quota = RecordingQuota()
    async with SmtpPeer() as peer:
        ctx = email_ctx(
            peer, config={"to": "a@x.org, b@y.org", "cc": "c@z.org", "subject": "s"}, plan=Plan.Free
        )
        result = await send_email(ctx, make_deps(quota=quota))
    assert peer.recipients == ["a@x.org"]
    assert peer.messages[0].message["Cc"] is None
    assert (
        result.message
        == "Email sent to a@x.org (b@y.org, c@z.org left out: free plan allows 1 recipient and no CC)"
    )
    assert quota.reserved == [1]


async def test_paid_plan_caps_to_plus_cc_at_ten_to_first() -> None:
    to = [f"to{i}@x.org" for i in range(8)]
    cc = [f"cc{i}@x.org" for i in range(4)]
    quota = RecordingQuota()
    async with SmtpPeer() as peer:
        ctx = email_ctx(peer, config={"to": ",".join(to), "cc": ";".join(cc), "subject": "s"})
        result = await send_email(ctx, make_deps(quota=quota))
    assert sorted(peer.recipients) == sorted(to + cc[:2])
    assert peer.messages[0].message["Cc"] == "cc0@x.org, cc1@x.org"
    assert result.message.endswith("(cc2@x.org, cc3@x.org left out: paid plan allows 10 recipients)")
    assert quota.reserved == [10]


async def test_malicious_html_is_stripped_and_a_text_part_is_kept() -> None:
    content = (
        "<div><h1>Fire at <b>Main St</b></h1>"
        '<p onclick="steal()">Respond <a href="javascript:alert(1)">now</a> '
        '<a href="https://maps.example.org/?q=1">map</a></p>'
        "<script>alert('xss')</script><iframe src=\"https://evil.test\"></iframe>"
        '<img src="x" onerror="alert(2)"><img src="data:image/png;base64,AAAA">'
        '<form action="https://evil.test"><input name="pw"><button>Go</button><textarea>t</textarea></form>'
        '<object data="x"></object><embed src="y"><select><option>1</option></select>'
        '<style>body{display:none}</style><p style="color: red; background-image: url(javascript:x)">Red</p></div>'
    )
    async with SmtpPeer() as peer:
        await send_email(email_ctx(peer, content=content), make_deps())
    html = peer.messages[0].part("text/html")
    lowered = html.lower()
    for forbidden in (
        "<script",
        "<iframe",
        "<form",
        "<input",
        "<button",
        "<textarea",
        "<select",
        "<object",
        "<embed",
        "<style",
        "onclick",
        "onerror",
        "javascript:",
        "data:",
        "alert",
        "background-image",
    ):
        assert forbidden not in lowered, forbidden
    assert "<h1>Fire at <b>Main St</b></h1>" in html
    assert 'href="https://maps.example.org/?q=1"' in html
    assert '<p style="color:red">Red</p>' in html
    assert "Go" not in html  # form-control text goes with the control
    text = peer.messages[0].part("text/plain")
    assert "Fire at Main St" in text
    assert "map (https://maps.example.org/?q=1)" in text
    assert "<" not in text
    assert "alert" not in text


async def test_css_values_that_run_code_or_load_urls_are_dropped() -> None:
    content = (
        '<p style="width: expression(alert(1)); color: red">A</p>'
        '<p style="height: exp/**/ression(alert(2)); margin: 0 auto">B</p>'
        '<p style="color: \\65 xpression(alert(3)); font-weight: bold">C</p>'
        '<p style="border: 1px solid url(https://tracker.test/pixel); background-color: rgb(255, 0, 0)">D</p>'
        '<div style="display: block; width: calc(100% - var(--x))">E</div>'
    )
    async with SmtpPeer() as peer:
        await send_email(email_ctx(peer, content=content), make_deps())
    html = peer.messages[0].part("text/html")
    lowered = html.lower()
    for forbidden in ("expression", "alert", "/*", "\\", "url(", "tracker.test", "calc(", "var("):
        assert forbidden not in lowered, (forbidden, html)
    for kept in (
        "color:red",
        "margin:0 auto",
        "font-weight:bold",
        "background-color:rgb(255, 0, 0)",
        "display:block",
    ):
        assert kept in html, (kept, html)


async def test_message_id_is_the_same_on_a_retry_of_the_same_step() -> None:
    async with SmtpPeer() as peer:
        await send_email(email_ctx(peer), make_deps())
        await send_email(email_ctx(peer), make_deps())
        await send_email(email_ctx(peer, step_id=8), make_deps())
    ids = [m.message["Message-ID"] for m in peer.messages]
    assert ids[0] == ids[1] != ids[2]


async def test_quota_refusal_sends_nothing() -> None:
    async with SmtpPeer() as peer:
        with pytest.raises(ActionError) as caught:
            await send_email(email_ctx(peer), make_deps(quota=RecordingQuota(refuse=True)))
    assert "Daily email limit" in caught.value.message
    assert peer.sessions == 0


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"subject": "s"}, "ActionConfig.to: is required"),
        (
            {"to": "not-an-address", "subject": "s"},
            "ActionConfig.to: 'not-an-address' is not a valid email address",
        ),
        ({"to": "a@x.org"}, "ActionConfig.subject: is required"),
    ],
)
async def test_invalid_config_fails_the_step_before_any_connection(
    config: dict[str, Any], expected: str
) -> None:
    """The engine checks the rendered config before the action; its message is the step's (permanent) error."""
    async with SmtpPeer() as peer:
        with pytest.raises(ActionConfigError) as caught:
            email_ctx(peer, config=config)
    assert expected in str(caught.value)
    assert peer.sessions == 0


@pytest.mark.parametrize(
    ("credential_overrides", "expected"),
    [
        ({"fromAddress": None}, "Data.fromAddress: is required"),
        ({"security": "ssl3"}, "Data.security: must be 'starttls', 'tls' or 'none'"),
        ({"port": "abc"}, "Data.port: must be a valid integer"),
    ],
)
def test_invalid_smtp_credential_is_refused_when_saved(
    credential_overrides: dict[str, Any], expected: str
) -> None:
    """A stored credential was checked when saved (the API's validation), so the action never sees these."""
    data = {"host": "mail.example.org", "port": 2525, "security": "none", "fromAddress": "a@example.org"}
    with pytest.raises(CredentialValidationError) as caught:
        validate_credential_data(CredentialType.Smtp, {**data, **credential_overrides})
    assert expected in str(caught.value)
