"""Teams, Slack and Discord actions, with the real webhook hostnames pointed at an HTTPS peer on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.executor.actions.base import ActionDeps, ActionError
from services.executor.registry import ACTIONS
from shared.actions.configs import coerce_rendered
from shared.enums import ActionType
from tests.actions.conftest import loopback_guard, make_ctx, make_deps
from tests.peers.https_server import HttpsPeer, Reply
from tests.peers.tls import LocalCA

send_teams = ACTIONS[ActionType.SendTeamsMessage]
send_slack = ACTIONS[ActionType.SendSlackMessage]
send_discord = ACTIONS[ActionType.SendDiscordMessage]
TEAMS_HOST = "contoso.webhook.office.com"
HOSTS = (TEAMS_HOST, "hooks.slack.com", "discord.com", "evil.example.org")
TEAMS_URL = f"https://{TEAMS_HOST}/webhookb2/abc/IncomingWebhook/def/secret-teams"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/secret-slack"
DISCORD_URL = "https://discord.com/api/webhooks/123/secret-discord"


@pytest.fixture
async def peer(local_ca: LocalCA) -> AsyncIterator[HttpsPeer]:
    async with HttpsPeer(local_ca, hostnames=HOSTS) as server:
        yield server


@pytest.fixture
def deps(peer: HttpsPeer) -> ActionDeps:
    return make_deps(loopback_guard(**dict.fromkeys(HOSTS, f"127.0.0.1:{peer.port}")))


def ctx(action: ActionType, content: str, *, credential: dict[str, Any] | None = None, **config: Any):
    return make_ctx(action, content=content, credential=credential, config=config)


# --- Teams ---------------------------------------------------------------------------------------


async def test_teams_message_card(peer: HttpsPeer, deps: ActionDeps) -> None:
    peer.reply("POST", "/webhookb2/abc/IncomingWebhook/def/secret-teams", Reply(200, "1"))
    # As rendered and checked by the engine: the model turns "#ff0000" into the "FF0000" Teams expects.
    config = coerce_rendered(ActionType.SendTeamsMessage, {"title": "Call 1001", "themeColor": "#ff0000"})
    context = ctx(
        ActionType.SendTeamsMessage, "Line one\nLine two", credential={"webhookUrl": TEAMS_URL}, **config
    )
    result = await send_teams(context, deps)

    assert result.message == "Teams message sent (HTTP 200)"
    [request] = peer.requests
    assert request.headers["host"] == TEAMS_HOST
    assert request.json() == {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": "Call 1001",
        "themeColor": "FF0000",
        "title": "Call 1001",
        "text": "Line one\n\nLine two",
    }


async def test_teams_adaptive_card_from_config_url(peer: HttpsPeer, deps: ActionDeps) -> None:
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "Fire"}]}
    await send_teams(ctx(ActionType.SendTeamsMessage, json.dumps(card), webhookUrl=TEAMS_URL), deps)
    assert peer.requests[0].json() == {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


async def test_teams_complete_message_is_sent_unchanged(peer: HttpsPeer, deps: ActionDeps) -> None:
    message = {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": {}}],
    }
    await send_teams(ctx(ActionType.SendTeamsMessage, json.dumps(message), webhookUrl=TEAMS_URL), deps)
    assert peer.requests[0].json() == message


@pytest.mark.parametrize("send", [send_teams, send_slack, send_discord])
async def test_empty_message_is_permanent_without_a_request(
    peer: HttpsPeer, deps: ActionDeps, send: Any
) -> None:
    url = {send_teams: TEAMS_URL, send_slack: SLACK_URL, send_discord: DISCORD_URL}[send]
    with pytest.raises(ActionError) as caught:
        await send(ctx(ActionType.SendSlackMessage, " \n", webhookUrl=url), deps)
    assert caught.value.permanent
    assert peer.requests == []


async def test_teams_default_summary_and_color(peer: HttpsPeer, deps: ActionDeps) -> None:
    await send_teams(ctx(ActionType.SendTeamsMessage, "hi", webhookUrl=TEAMS_URL), deps)
    assert peer.requests[0].json() == {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": "Workflow notification",
        "themeColor": "0076D7",
        "text": "hi",
    }


async def test_teams_server_error_is_transient_and_hides_the_url(peer: HttpsPeer, deps: ActionDeps) -> None:
    peer.reply(
        "POST", "/webhookb2/abc/IncomingWebhook/def/secret-teams", Reply(502, f"bad gateway for {TEAMS_URL}")
    )
    with pytest.raises(ActionError) as caught:
        await send_teams(ctx(ActionType.SendTeamsMessage, "hi", webhookUrl=TEAMS_URL), deps)
    assert not caught.value.permanent
    assert "secret-teams" not in caught.value.message


# --- Slack ---------------------------------------------------------------------------------------


async def test_slack_text_with_options(peer: HttpsPeer, deps: ActionDeps) -> None:
    peer.reply("POST", "/services/T000/B000/secret-slack", Reply(200, "ok"))
    context = ctx(
        ActionType.SendSlackMessage,
        "Engine 5 dispatched",
        credential={"webhookUrl": SLACK_URL},
        channel="#alerts",
        username="Dispatch",
        iconEmoji=":fire:",
    )
    result = await send_slack(context, deps)
    assert result.message == "Slack message sent."
    [request] = peer.requests
    assert (request.headers["host"], request.path) == ("hooks.slack.com", "/services/T000/B000/secret-slack")
    assert request.json() == {
        "text": "Engine 5 dispatched",
        "channel": "#alerts",
        "username": "Dispatch",
        "icon_emoji": ":fire:",
    }


async def test_slack_blocks_payload_is_sent_as_is(peer: HttpsPeer, deps: ActionDeps) -> None:
    peer.reply("POST", "/services/T000/B000/secret-slack", Reply(200, "ok"))
    message = {
        "text": "fallback",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Fire*"}}],
    }
    await send_slack(
        ctx(ActionType.SendSlackMessage, json.dumps(message), webhookUrl=SLACK_URL, channel="#c"), deps
    )
    assert peer.requests[0].json() == {**message, "channel": "#c"}


async def test_slack_rate_limit_is_transient(peer: HttpsPeer, deps: ActionDeps) -> None:
    peer.reply(
        "POST", "/services/T000/B000/secret-slack", Reply(429, "rate_limited", headers={"Retry-After": "30"})
    )
    with pytest.raises(ActionError) as caught:
        await send_slack(ctx(ActionType.SendSlackMessage, "x", webhookUrl=SLACK_URL), deps)
    assert not caught.value.permanent
    assert caught.value.retry_after == 30


async def test_slack_bad_payload_is_permanent(peer: HttpsPeer, deps: ActionDeps) -> None:
    peer.reply("POST", "/services/T000/B000/secret-slack", Reply(400, "invalid_payload"))
    with pytest.raises(ActionError) as caught:
        await send_slack(ctx(ActionType.SendSlackMessage, "x", webhookUrl=SLACK_URL), deps)
    assert caught.value.permanent
    assert "invalid_payload" in caught.value.message


@pytest.mark.parametrize(
    ("action", "url"),
    [
        (ActionType.SendSlackMessage, "https://evil.example.org/services/T000/B000/x"),
        (ActionType.SendTeamsMessage, "https://evil.example.org/webhookb2/x"),
        (ActionType.SendDiscordMessage, "https://evil.example.org/api/webhooks/1/x"),
        (ActionType.SendDiscordMessage, "https://discord.com/not-a-webhook/1/x"),
        (ActionType.SendSlackMessage, "http://hooks.slack.com/services/T000/B000/x"),
    ],
)
async def test_urls_off_the_provider_host_are_refused_without_a_request(
    peer: HttpsPeer, deps: ActionDeps, action: ActionType, url: str
) -> None:
    send = {
        ActionType.SendSlackMessage: send_slack,
        ActionType.SendTeamsMessage: send_teams,
        ActionType.SendDiscordMessage: send_discord,
    }[action]
    with pytest.raises(ActionError) as caught:
        await send(ctx(action, "x", credential={"webhookUrl": url}), deps)
    assert caught.value.permanent
    assert "webhook URL" in caught.value.message
    assert peer.requests == []


async def test_missing_webhook_url_is_permanent(deps: ActionDeps) -> None:
    with pytest.raises(ActionError) as caught:
        await send_slack(ctx(ActionType.SendSlackMessage, "x", credential={"botToken": "xoxb-1"}), deps)
    assert caught.value.permanent
    assert "No Slack webhook URL" in caught.value.message


# --- Discord -------------------------------------------------------------------------------------


async def test_discord_content_with_username_and_avatar(peer: HttpsPeer, deps: ActionDeps) -> None:
    result = await send_discord(
        ctx(
            ActionType.SendDiscordMessage,
            "Fire at Main St",
            credential={"webhookUrl": DISCORD_URL},
            username="Dispatch",
            avatarUrl="https://cdn.example.org/a.png",
        ),
        deps,
    )
    assert result.message == "Discord message sent (HTTP 200)"
    [request] = peer.requests
    assert (request.headers["host"], request.path, request.query) == (
        "discord.com",
        "/api/webhooks/123/secret-discord",
        "wait=true",
    )
    assert request.json() == {
        "content": "Fire at Main St",
        "username": "Dispatch",
        "avatar_url": "https://cdn.example.org/a.png",
    }


async def test_discord_json_array_becomes_embeds(peer: HttpsPeer, deps: ActionDeps) -> None:
    embeds = [{"title": "Call 1001", "description": "Structure fire", "color": 16711680}]
    await send_discord(ctx(ActionType.SendDiscordMessage, json.dumps(embeds), webhookUrl=DISCORD_URL), deps)
    assert peer.requests[0].json() == {"embeds": embeds}


async def test_discord_message_object_is_used_as_is(peer: HttpsPeer, deps: ActionDeps) -> None:
    message = {"content": "hi", "embeds": [{"title": "t"}]}
    await send_discord(ctx(ActionType.SendDiscordMessage, json.dumps(message), webhookUrl=DISCORD_URL), deps)
    assert peer.requests[0].json() == message


async def test_discord_rate_limit_uses_retry_after_from_the_body(peer: HttpsPeer, deps: ActionDeps) -> None:
    peer.reply(
        "POST",
        "/api/webhooks/123/secret-discord",
        Reply(429, {"message": "You are being rate limited.", "retry_after": 2.5, "global": False}),
    )
    with pytest.raises(ActionError) as caught:
        await send_discord(ctx(ActionType.SendDiscordMessage, "x", webhookUrl=DISCORD_URL), deps)
    assert not caught.value.permanent
    assert caught.value.retry_after == 2.5


async def test_discord_content_over_2000_characters_is_permanent(peer: HttpsPeer, deps: ActionDeps) -> None:
    with pytest.raises(ActionError) as caught:
        await send_discord(ctx(ActionType.SendDiscordMessage, "x" * 2001, webhookUrl=DISCORD_URL), deps)
    assert caught.value.permanent
    assert "2000" in caught.value.message
    assert peer.requests == []


async def test_discord_plain_http_avatar_is_permanent(peer: HttpsPeer, deps: ActionDeps) -> None:
    with pytest.raises(ActionError) as caught:
        await send_discord(
            ctx(
                ActionType.SendDiscordMessage,
                "x",
                webhookUrl=DISCORD_URL,
                avatarUrl="http://cdn.example.org/a.png",
            ),
            deps,
        )
    assert caught.value.permanent
    assert "avatarUrl" in caught.value.message
    assert peer.requests == []
