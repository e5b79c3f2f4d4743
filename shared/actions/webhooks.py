"""SendTeamsMessage, SendSlackMessage, SendDiscordMessage: one JSON post to a chat provider's incoming
webhook.

Everything about the three lives here: the webhook URL host rules (the spec's "Webhook URL
Validation"), the credential types, the ActionConfig models and ``perform``. The host rules run on top
of the executor's egress guard: they keep a webhook URL from pointing anywhere but the chat provider,
which matters because the workflow author, not the operator, supplies the URL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import AfterValidator

from shared.actions.config_fields import OneLineText, as_text, https_url, pattern
from shared.actions.outcomes import ActionError, ActionResult, permanent, transient
from shared.actions.replies import HttpReply, body_snippet, redact, redact_error, status_error
from shared.actions.spec import ActionConfig, ActionHost, ActionSpec, StepRun
from shared.credential_fields import CredentialData, Line, Token, _secret
from shared.enums import ActionType, CredentialType

__all__ = [
    "DiscordConfig",
    "DiscordCredential",
    "MicrosoftTeamsCredential",
    "SPECS",
    "SlackConfig",
    "SlackCredential",
    "TeamsConfig",
    "WebhookKind",
    "WebhookUrlError",
    "send_discord",
    "send_slack",
    "send_teams",
    "validate_webhook_url",
]

# --- webhook URL host rules -------------------------------------------------------------------------

WebhookKind = Literal["teams", "slack", "discord"]

_PREVIEW_CHARS = 60
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Whitespace, control characters and backslashes are parsed differently by different URL parsers
# (urlsplit drops tabs, browsers read "\" as "/"), so a URL containing them is never accepted.
_AMBIGUOUS = re.compile(r"[\x00-\x20\x7f\\]")
_KIND_NAMES: dict[str, str] = {"teams": "Teams", "slack": "Slack", "discord": "Discord"}
_TEAMS_SUFFIXES = (".webhook.office.com", ".logic.azure.com")
_DISCORD_HOSTS = ("discord.com", "discordapp.com")


class WebhookUrlError(ValueError):
    """A webhook URL that breaks the host rules; the message shows at most its first 60 characters."""


def validate_webhook_url(kind: WebhookKind, url: str) -> None:
    """Raise ``WebhookUrlError`` unless ``url`` is an https URL on ``kind``'s provider host."""
    name = _KIND_NAMES.get(kind)
    if name is None:
        raise ValueError(f"unknown webhook kind {kind!r}")

    def fail(problem: str) -> WebhookUrlError:
        return WebhookUrlError(f"{name} webhook URL {problem}: {_preview(url)}")

    if not url:
        raise WebhookUrlError(f"{name} webhook URL is empty")
    if _AMBIGUOUS.search(url):
        raise fail("contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise fail("is not a valid URL") from None
    if parts.scheme != "https":
        raise fail("must use https")
    if "@" in parts.netloc:
        raise fail("must not contain a user name or password")
    if port not in (None, 443):
        raise fail("must not name a port other than 443")
    host = (parts.hostname or "").removesuffix(".")
    if not host or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise fail("has an invalid host name")

    if kind == "teams":
        if not any(host.endswith(suffix) for suffix in _TEAMS_SUFFIXES):
            raise fail("must be on a host ending with .webhook.office.com or .logic.azure.com")
    elif kind == "slack":
        if host != "hooks.slack.com":
            raise fail("must be on the host hooks.slack.com")
    else:
        if host not in _DISCORD_HOSTS:
            raise fail("must be on the host discord.com or discordapp.com")
        # Judge the path as the server will see it: %2e%2e is "..", which would leave /api/webhooks/.
        path = unquote(parts.path)
        segments = path.split("/")
        if "%" in path or ".." in segments or "." in segments or not path.startswith("/api/webhooks/"):
            raise fail("must have a path starting with /api/webhooks/")


def _preview(url: str) -> str:
    # A webhook URL ends in its secret: show the beginning only, and never a short URL whole.
    return url[: min(_PREVIEW_CHARS, len(url) * 2 // 3)] + "…"


def _host_rules(kind: WebhookKind) -> Callable[[str], str]:
    """A field check for a credential's or a config's webhook URL (``WebhookUrlError`` is a ValueError)."""

    def check(value: str) -> str:
        validate_webhook_url(kind, value)
        return value

    return check


# --- credentials ------------------------------------------------------------------------------------


class MicrosoftTeamsCredential(CredentialData):
    """Microsoft Teams incoming webhook (type 8)."""

    webhook_url: Annotated[Line, AfterValidator(_host_rules("teams"))] = _secret(required=True)


class SlackCredential(CredentialData):
    """Slack (type 9). Sending needs ``webhookUrl``; ``botToken`` is kept for compatibility."""

    webhook_url: Annotated[Line, AfterValidator(_host_rules("slack"))] | None = _secret()
    bot_token: Token | None = _secret()

    def cross_field_errors(self) -> list[tuple[str, str]]:
        return [] if self.webhook_url or self.bot_token else [("webhookUrl", "is required")]


class DiscordCredential(CredentialData):
    """Discord (type 10). Sending needs ``webhookUrl``; ``botToken`` is kept for compatibility."""

    webhook_url: Annotated[Line, AfterValidator(_host_rules("discord"))] | None = _secret()
    bot_token: Token | None = _secret()

    def cross_field_errors(self) -> list[tuple[str, str]]:
        return [] if self.webhook_url or self.bot_token else [("webhookUrl", "is required")]


# --- configs ----------------------------------------------------------------------------------------


class _WebhookConfig(ActionConfig):
    webhook_url: str | None = None  # redeclared with the provider's host rules

    @classmethod
    def rules(cls, config: Mapping[str, Any], *, has_credential: bool | None) -> list[tuple[str, str]]:
        # The URL comes from the credential or from the config (a templated one is checked once rendered).
        if has_credential is False and "webhookUrl" not in config:
            return [("webhookUrl", "is required when the step has no credential")]
        return []


def _theme_color(value: str) -> str:
    color = value.strip().removeprefix("#")
    if not re.fullmatch(r"[0-9A-Fa-f]{6}", color):
        raise ValueError("must be a hex colour like 0076D7")
    return color.upper()


class TeamsConfig(_WebhookConfig):
    title: OneLineText | None = None
    theme_color: Annotated[str, as_text(_theme_color)] = "0076D7"  # Teams' own blue
    webhook_url: Annotated[str, as_text(_host_rules("teams"))] | None = None


class SlackConfig(_WebhookConfig):
    channel: OneLineText | None = None
    username: OneLineText | None = None
    icon_emoji: (
        Annotated[str, as_text(pattern(r"^:[\w+'-]+:$", "must be an emoji code like :fire:"))] | None
    ) = None
    webhook_url: Annotated[str, as_text(_host_rules("slack"))] | None = None


class DiscordConfig(_WebhookConfig):
    username: (
        Annotated[str, as_text(pattern(r"^[^\x00-\x1f\x7f]{1,80}$", "must be 1-80 characters on one line"))]
        | None
    ) = None
    avatar_url: Annotated[str, as_text(https_url)] | None = None
    webhook_url: Annotated[str, as_text(_host_rules("discord"))] | None = None


# --- perform ----------------------------------------------------------------------------------------

DEFAULT_TEAMS_SUMMARY = "Workflow notification"
DISCORD_MAX_CONTENT = 2000
ADAPTIVE_CARD_TYPE = "application/vnd.microsoft.card.adaptive"


async def send_teams(
    host: ActionHost, step: StepRun, config: TeamsConfig, credential: MicrosoftTeamsCredential | None
) -> ActionResult:
    url = _webhook_url(credential, config, "teams", "Teams")
    _require_content(step)
    card = _json_object(step.content)
    payload: dict[str, Any]
    if card is not None and card.get("type") == "message":
        payload = card  # already a complete Teams message with attachments
    elif card is not None and "type" in card:
        payload = {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD_TYPE, "content": card}]}
    else:
        title = config.title
        payload = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title or DEFAULT_TEAMS_SUMMARY,
            "themeColor": config.theme_color,  # hex without "#", as the model normalises it
        }
        if title:
            payload["title"] = title
        # Teams renders the text as Markdown, where a single newline does not break the line.
        payload["text"] = step.content.replace("\r\n", "\n").replace("\n", "\n\n")
    reply = await _post(host, url, payload, what="Teams webhook")
    _raise_for_status(reply, "Teams webhook", url, host)
    return ActionResult(f"Teams message sent (HTTP {reply.status})")


async def send_slack(
    host: ActionHost, step: StepRun, config: SlackConfig, credential: SlackCredential | None
) -> ActionResult:
    url = _webhook_url(credential, config, "slack", "Slack")
    _require_content(step)
    message = _json_object(step.content)
    payload: dict[str, Any] = (
        dict(message)
        if message is not None and ("blocks" in message or "text" in message)
        else {"text": step.content}
    )
    for slack_key, value in (
        ("channel", config.channel),
        ("username", config.username),
        ("icon_emoji", config.icon_emoji),
    ):
        if value:
            payload[slack_key] = value
    reply = await _post(host, url, payload, what="Slack webhook")
    _raise_for_status(reply, "Slack webhook", url, host)
    if reply.text.strip() == "ok":
        return ActionResult("Slack message sent.")
    return ActionResult(f"Slack response (HTTP {reply.status}): {redact(body_snippet(reply.text), [url])}")


async def send_discord(
    host: ActionHost, step: StepRun, config: DiscordConfig, credential: DiscordCredential | None
) -> ActionResult:
    url = _webhook_url(credential, config, "discord", "Discord")
    _require_content(step)
    payload = _discord_payload(step.content)
    content = payload.get("content")
    if isinstance(content, str) and len(content) > DISCORD_MAX_CONTENT:
        raise permanent(
            f"Discord message content is {len(content)} characters; Discord allows at most {DISCORD_MAX_CONTENT}"
        )
    username = config.username
    if username:
        payload["username"] = username
    avatar = config.avatar_url
    if avatar:
        if not avatar.lower().startswith("https://"):
            raise permanent("Discord action config 'avatarUrl' must be an https URL")
        payload["avatar_url"] = avatar
    # wait=true makes Discord confirm the message (200 with the message) instead of a fire-and-forget 204.
    target = httpx.URL(url).copy_merge_params({"wait": "true"})
    reply = await _post(host, target, payload, what="Discord webhook")
    if reply.status == 429:
        raise transient(
            "Discord webhook rate limited",
            retry_after=_discord_retry_after(reply, host.settings.max_retry_after_s),
            result="HTTP 429",
        )
    _raise_for_status(reply, "Discord webhook", url, host)
    return ActionResult(f"Discord message sent (HTTP {reply.status})")


def _webhook_url(
    credential: MicrosoftTeamsCredential | SlackCredential | DiscordCredential | None,
    config: TeamsConfig | SlackConfig | DiscordConfig,
    kind: WebhookKind,
    label: str,
) -> str:
    """The credential's webhookUrl, else the config's; it must satisfy the service's host rules."""
    url = _text(credential.webhook_url if credential is not None else None) or _text(config.webhook_url)
    if not url:
        raise permanent(
            f"No {label} webhook URL: attach a {label} credential with 'webhookUrl' or set it in the config"
        )
    try:
        validate_webhook_url(kind, url)
    except ValueError as exc:
        raise permanent(f"Invalid {label} webhook URL: {redact(str(exc), [url])}") from None
    return url


def _text(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _require_content(step: StepRun) -> None:
    if not step.content.strip():
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
    host: ActionHost, url: str | httpx.URL, payload: Mapping[str, Any], *, what: str
) -> HttpReply:
    secret = str(url)
    try:
        # Redirects are not followed: the host rules apply to the configured URL only.
        return await host.http_request(
            "POST",
            url,
            what=what,
            timeout=host.settings.http_timeout_s,
            follow_redirects=False,
            json=payload,
        )
    except ActionError as exc:
        raise redact_error(exc, [secret, secret.split("?")[0]]) from None


def _raise_for_status(reply: HttpReply, what: str, url: str, host: ActionHost) -> None:
    if 200 <= reply.status < 300:
        return
    detail = redact(body_snippet(reply.text.strip(), 500), [url])
    raise status_error(
        reply.status, what=what, detail=detail, retry_after=reply.retry_after(host.settings.max_retry_after_s)
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


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.SendTeamsMessage,
        TeamsConfig,
        frozenset({None, CredentialType.MicrosoftTeams}),
        MicrosoftTeamsCredential,
        send_teams,
    ),
    ActionSpec(
        ActionType.SendSlackMessage,
        SlackConfig,
        frozenset({None, CredentialType.Slack}),
        SlackCredential,
        send_slack,
    ),
    ActionSpec(
        ActionType.SendDiscordMessage,
        DiscordConfig,
        frozenset({None, CredentialType.Discord}),
        DiscordCredential,
        send_discord,
    ),
]
