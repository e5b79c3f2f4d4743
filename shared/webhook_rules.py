"""Host rules for Teams, Slack and Discord webhook URLs (the spec's "Webhook URL Validation").

These run on top of the egress guard: they keep a webhook credential from pointing anywhere but the
chat provider, which matters because the workflow author, not the operator, supplies the URL.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import unquote, urlsplit

__all__ = ["WebhookKind", "WebhookUrlError", "validate_webhook_url"]

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
