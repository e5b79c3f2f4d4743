"""SendTeamsMessage, SendSlackMessage, SendDiscordMessage: one JSON post to an incoming webhook."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from services.executor.actions.base import (
    ActionContext,
    ActionDeps,
    ActionError,
    ActionResult,
    permanent,
    transient,
)
from services.executor.actions.results import (
    HttpReply,
    body_snippet,
    http_request,
    redact,
    redact_error,
    status_error,
    text_value,
)
from shared.webhook_rules import WebhookKind, validate_webhook_url

DEFAULT_TEAMS_SUMMARY = "Workflow notification"
DEFAULT_THEME_COLOR = "0076D7"
DISCORD_MAX_CONTENT = 2000
ADAPTIVE_CARD_TYPE = "application/vnd.microsoft.card.adaptive"


async def send_teams(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    url = _webhook_url(ctx, "teams", "Teams")
    _require_content(ctx)
    card = _json_object(ctx.content)
    payload: dict[str, Any]
    if card is not None and card.get("type") == "message":
        payload = card  # already a complete Teams message with attachments
    elif card is not None and "type" in card:
        payload = {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD_TYPE, "content": card}]}
    else:
        title = text_value(ctx.config, "title", what="Teams action config")
        color = (
            text_value(ctx.config, "themeColor", what="Teams action config") or DEFAULT_THEME_COLOR
        ).lstrip("#")
        payload = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title or DEFAULT_TEAMS_SUMMARY,
            "themeColor": color,
        }
        if title:
            payload["title"] = title
        # Teams renders the text as Markdown, where a single newline does not break the line.
        payload["text"] = ctx.content.replace("\r\n", "\n").replace("\n", "\n\n")
    reply = await _post(deps, url, payload, what="Teams webhook")
    _raise_for_status(reply, "Teams webhook", url, deps)
    return ActionResult(f"Teams message sent (HTTP {reply.status})")


async def send_slack(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    url = _webhook_url(ctx, "slack", "Slack")
    _require_content(ctx)
    message = _json_object(ctx.content)
    payload: dict[str, Any] = (
        dict(message)
        if message is not None and ("blocks" in message or "text" in message)
        else {"text": ctx.content}
    )
    for config_key, slack_key in (
        ("channel", "channel"),
        ("username", "username"),
        ("iconEmoji", "icon_emoji"),
    ):
        value = text_value(ctx.config, config_key, what="Slack action config")
        if value:
            payload[slack_key] = value
    reply = await _post(deps, url, payload, what="Slack webhook")
    _raise_for_status(reply, "Slack webhook", url, deps)
    if reply.text.strip() == "ok":
        return ActionResult("Slack message sent.")
    return ActionResult(f"Slack response (HTTP {reply.status}): {redact(body_snippet(reply.text), [url])}")


async def send_discord(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    url = _webhook_url(ctx, "discord", "Discord")
    _require_content(ctx)
    payload = _discord_payload(ctx.content)
    content = payload.get("content")
    if isinstance(content, str) and len(content) > DISCORD_MAX_CONTENT:
        raise permanent(
            f"Discord message content is {len(content)} characters; Discord allows at most {DISCORD_MAX_CONTENT}"
        )
    username = text_value(ctx.config, "username", what="Discord action config")
    if username:
        payload["username"] = username
    avatar = text_value(ctx.config, "avatarUrl", what="Discord action config")
    if avatar:
        if not avatar.lower().startswith("https://"):
            raise permanent("Discord action config 'avatarUrl' must be an https URL")
        payload["avatar_url"] = avatar
    # wait=true makes Discord confirm the message (200 with the message) instead of a fire-and-forget 204.
    target = httpx.URL(url).copy_merge_params({"wait": "true"})
    reply = await _post(deps, target, payload, what="Discord webhook")
    if reply.status == 429:
        raise transient(
            "Discord webhook rate limited",
            retry_after=_discord_retry_after(reply, deps.settings.max_retry_after_s),
            result="HTTP 429",
        )
    _raise_for_status(reply, "Discord webhook", url, deps)
    return ActionResult(f"Discord message sent (HTTP {reply.status})")


def _webhook_url(ctx: ActionContext, kind: WebhookKind, label: str) -> str:
    """The credential's webhookUrl, else the config's; it must satisfy the service's host rules."""
    url = text_value(ctx.credential, "webhookUrl", what=f"{label} credential") or text_value(
        ctx.config, "webhookUrl", what=f"{label} action config"
    )
    if not url:
        raise permanent(
            f"No {label} webhook URL: attach a {label} credential with 'webhookUrl' or set it in the config"
        )
    try:
        validate_webhook_url(kind, url)
    except ValueError as exc:
        raise permanent(f"Invalid {label} webhook URL: {redact(str(exc), [url])}") from None
    return url


def _require_content(ctx: ActionContext) -> None:
    if not ctx.content.strip():
        raise permanent("The rendered message is empty")


def _json_object(content: str) -> dict[str, Any] | None:
    text = content.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _discord_payload(content: str) -> dict[str, Any]:
    text = content.strip()
    if text.startswith(("[", "{")):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list):
            return {"embeds": value}
        if isinstance(value, dict) and ("embeds" in value or "content" in value):
            return dict(value)
    return {"content": content}


async def _post(
    deps: ActionDeps, url: str | httpx.URL, payload: Mapping[str, Any], *, what: str
) -> HttpReply:
    secret = str(url)
    try:
        # Redirects are not followed: the host rules apply to the configured URL only.
        return await http_request(
            deps.egress,
            "POST",
            url,
            what=what,
            timeout=deps.settings.http_timeout_s,
            follow_redirects=False,
            json=payload,
        )
    except ActionError as exc:
        raise redact_error(exc, [secret, secret.split("?")[0]]) from None


def _raise_for_status(reply: HttpReply, what: str, url: str, deps: ActionDeps) -> None:
    if 200 <= reply.status < 300:
        return
    detail = redact(body_snippet(reply.text.strip(), 500), [url])
    raise status_error(
        reply.status, what=what, detail=detail, retry_after=reply.retry_after(deps.settings.max_retry_after_s)
    )


def _discord_retry_after(reply: HttpReply, cap: float) -> float | None:
    try:
        body = json.loads(reply.text)
        seconds = float(body["retry_after"]) if isinstance(body, dict) and "retry_after" in body else None
    except (ValueError, TypeError):
        seconds = None
    if seconds is not None:
        return min(max(0.0, seconds), cap)
    return reply.retry_after(cap)
