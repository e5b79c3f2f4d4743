import pytest

from shared.actions.webhooks import WebhookUrlError, validate_webhook_url

SLACK_TOKEN = "abcdefghijklmnopqrstuvwx"
SLACK_URL = f"https://hooks.slack.com/services/T00000000/B00000000/{SLACK_TOKEN}"


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("teams", "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456"),
        ("teams", "https://CONTOSO.Webhook.Office.com/webhookb2/abc"),
        ("teams", "https://contoso.webhook.office.com./webhookb2/abc"),
        (
            "teams",
            "https://prod-27.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x",
        ),
        ("slack", SLACK_URL),
        ("slack", "https://HOOKS.SLACK.COM/services/T0/B0/x"),
        ("slack", "https://hooks.slack.com./services/T0/B0/x"),
        ("slack", "https://hooks.slack.com:443/services/T0/B0/x"),
        ("discord", "https://discord.com/api/webhooks/123/token"),
        ("discord", "https://discordapp.com/api/webhooks/123/token"),
        ("discord", "https://Discord.com./api/webhooks/123/token?wait=true"),
    ],
)
def test_provider_urls_are_accepted(kind, url):
    validate_webhook_url(kind, url)


@pytest.mark.parametrize(
    ("kind", "url", "problem"),
    [
        ("teams", "http://contoso.webhook.office.com/webhookb2/abc", "must use https"),
        ("teams", "https://outlook.office.com/webhook/abc", "ending with .webhook.office.com"),
        ("teams", "https://webhook.office.com/webhookb2/abc", "ending with .webhook.office.com"),
        ("teams", "https://contoso.webhook.office.com.evil.example/x", "ending with .webhook.office.com"),
        ("teams", "https://evilwebhook.office.com/x", "ending with .webhook.office.com"),
        ("teams", "https://contoso.logic.azure.com:8443/workflows/x", "port other than 443"),
        ("teams", "https://evil.example\\.webhook.office.com/x", "backslashes"),
        ("slack", "http://hooks.slack.com/services/T0/B0/x", "must use https"),
        ("slack", "https://hooks.slack.com.evil.example/services/x", "hooks.slack.com"),
        ("slack", "https://evilhooks.slack.com/services/x", "hooks.slack.com"),
        ("slack", "https://api.slack.com/services/x", "hooks.slack.com"),
        ("slack", "https://hooks.slack.com@127.0.0.1/services/x", "user name or password"),
        ("slack", "https://user:pw@hooks.slack.com/services/x", "user name or password"),
        ("slack", "https://hooks.slack.com:8443/services/x", "port other than 443"),
        ("slack", "https://hooks.slack.com:99999/services/x", "not a valid URL"),
        ("slack", "ftp://hooks.slack.com/services/x", "must use https"),
        ("slack", "hooks.slack.com/services/x", "must use https"),
        ("slack", "https://hooks.slack.com\t/services/x", "whitespace"),
        ("slack", "https://127.0.0.1/services/x", "hooks.slack.com"),
        ("slack", "https://[::1]/services/x", "invalid host name"),
        ("slack", "https://hooks.slаck.com/services/x", "invalid host name"),  # Cyrillic "а"
        ("slack", "", "is empty"),
        ("discord", "https://discord.com/api/v10/channels/1/messages", "/api/webhooks/"),
        ("discord", "https://discord.com/api/webhooks/../v10/users/@me", "/api/webhooks/"),
        ("discord", "https://discord.com/api/webhooks/%2e%2e/v10/users/@me", "/api/webhooks/"),
        ("discord", "https://discord.com/api/webhooks/%2E%2e/%2e%2E/v10/guilds", "/api/webhooks/"),
        ("discord", "https://discord.com/api/webhooks/.%2e/v10/users/@me", "/api/webhooks/"),
        ("discord", "https://discord.com/api/webhooks%2f..%2fv10/users/@me", "/api/webhooks/"),
        ("discord", "https://discord.com/api/webhooks/%252e%252e/v10/users/@me", "/api/webhooks/"),
        ("discord", "https://discord.com/api/%77ebhooks/1/../../v10/users/@me", "/api/webhooks/"),
        ("discord", "https://discord.gg/api/webhooks/1/t", "discord.com or discordapp.com"),
        ("discord", "https://evil.discord.com/api/webhooks/1/t", "discord.com or discordapp.com"),
        ("discord", "https://discord.com.evil.example/api/webhooks/1/t", "discord.com or discordapp.com"),
        ("discord", "http://discord.com/api/webhooks/1/t", "must use https"),
    ],
)
def test_other_urls_are_rejected_with_the_reason(kind, url, problem):
    with pytest.raises(WebhookUrlError) as raised:
        validate_webhook_url(kind, url)
    assert problem in str(raised.value)


def test_a_url_for_one_provider_is_rejected_for_another():
    with pytest.raises(WebhookUrlError, match="Discord"):
        validate_webhook_url("discord", SLACK_URL)
    with pytest.raises(WebhookUrlError, match="Teams"):
        validate_webhook_url("teams", SLACK_URL)


def test_the_message_never_shows_the_whole_secret_url():
    long_url = SLACK_URL.replace("https", "http")
    with pytest.raises(WebhookUrlError) as raised:
        validate_webhook_url("slack", long_url)
    message = str(raised.value)
    shown = message.split(": ", 1)[1]
    assert shown.endswith("…")
    assert long_url.startswith(shown[:-1])
    assert 40 <= len(shown[:-1]) <= 60
    assert SLACK_TOKEN[:4] not in message

    very_long_url = long_url + "?x=" + "y" * 200
    with pytest.raises(WebhookUrlError) as raised:
        validate_webhook_url("slack", very_long_url)
    assert str(raised.value).endswith(": " + very_long_url[:60] + "…")

    short_url = "http://hooks.slack.com/s/T0/B0/shortsecret"
    with pytest.raises(WebhookUrlError) as raised:
        validate_webhook_url("slack", short_url)
    assert "shortsecret" not in str(raised.value)
    assert "http://hooks.slack.com" in str(raised.value)


def test_an_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown webhook kind"):
        validate_webhook_url("telegram", "https://api.telegram.org/")  # type: ignore[arg-type]
