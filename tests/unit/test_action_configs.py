import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.actions.config_fields import split_addresses
from shared.actions.configs import ActionConfigError, allowed_keys, coerce_rendered, parse_action_config
from shared.actions.registry import ACTION_SPECS as ACTION_CONFIG_SCHEMAS
from shared.enums import ActionType as A

NOW = datetime(2026, 11, 29, 12, 3, 4, tzinfo=UTC)
CALL_API = [A.CallApiGet, A.CallApiPost, A.CallApiPut, A.CallApiDelete]

VALID: dict[A, dict[str, Any]] = {
    A.SendEmail: {
        "to": "chief@example.org, crew@example.org",
        "cc": "log@example.org",
        "subject": "Call",
        "replyTo": "noreply@example.org",
    },
    A.SendSms: {"to": "+15551234567,+15557654321"},
    **{
        a: {
            "url": "https://api.example.org/hook",
            "contentType": "application/json",
            "timeoutSeconds": 10,
            "headers": {"X-Station": "7"},
        }
        for a in CALL_API
    },
    A.UploadFileFtp: {"remotePath": "/incoming", "filename": "call.txt", "overwrite": False},
    A.UploadFileSftp: {"remotePath": "/incoming", "filename": "call.txt", "overwrite": True},
    A.UploadFileS3: {
        "s3Key": "calls/1.txt",
        "contentType": "text/csv",
        "serverSideEncryption": "aws:kms",
        "kmsKeyId": "alias/wf",
    },
    A.SendTeamsMessage: {
        "title": "New call",
        "themeColor": "FF0000",
        "webhookUrl": "https://contoso.webhook.office.com/webhookb2/x",
    },
    A.SendSlackMessage: {
        "channel": "#dispatch",
        "username": "Workflows",
        "iconEmoji": ":fire_engine:",
        "webhookUrl": "https://hooks.slack.com/services/x",
    },
    A.SendDiscordMessage: {
        "username": "Workflows",
        "avatarUrl": "https://cdn.example.org/a.png",
        "webhookUrl": "https://discord.com/api/webhooks/1/x",
    },
    A.UploadFileAzureBlob: {"blobName": "calls/1.txt", "contentType": "text/plain"},
    A.UploadFileBox: {"folderId": "12345", "filename": "call.txt"},
    A.UploadFileDropbox: {"targetPath": "/Calls", "filename": "call.txt", "writeMode": "overwrite"},
}

REQUIRED: dict[A, set[str]] = {
    A.SendEmail: {"to", "subject"},
    A.SendSms: {"to"},
    **{a: {"url"} for a in CALL_API},
}

# a key of each action and a value of the wrong JSON type for it
WRONG_TYPE: dict[A, tuple[str, Any]] = {
    A.SendEmail: ("subject", 5.5),
    A.SendSms: ("to", ["+15551234567"]),
    **dict.fromkeys(CALL_API, ("timeoutSeconds", "soon")),
    A.UploadFileFtp: ("overwrite", "maybe"),
    A.UploadFileSftp: ("overwrite", 3),
    A.UploadFileS3: ("s3Key", {"a": 1}),
    A.SendTeamsMessage: ("title", True),
    A.SendSlackMessage: ("channel", ["#a"]),
    A.SendDiscordMessage: ("username", {"x": 1}),
    A.UploadFileAzureBlob: ("blobName", False),
    A.UploadFileBox: ("folderId", ["0"]),
    A.UploadFileDropbox: ("writeMode", 1),
}


def config_errors(action: A, config: Any, **kwargs: Any) -> dict[str, str]:
    raw = config if isinstance(config, str) or config is None else json.dumps(config)
    with pytest.raises(ActionConfigError) as info:
        parse_action_config(action, raw, **kwargs)
    assert str(info.value)
    return dict(info.value.fields)


def coerce_errors(action: A, rendered: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ActionConfigError) as info:
        coerce_rendered(action, rendered, now=NOW)
    return dict(info.value.fields)


def test_every_action_type_is_covered() -> None:
    assert set(ACTION_CONFIG_SCHEMAS) == set(A) == set(VALID) == set(WRONG_TYPE)


@pytest.mark.parametrize("action", list(A))
def test_valid_config_is_accepted_and_survives_rendering(action: A) -> None:
    parsed = parse_action_config(action, json.dumps(VALID[action]))
    assert parsed == VALID[action]
    coerced = coerce_rendered(action, parsed, now=NOW)
    assert coerced.items() >= parsed.items()
    assert set(coerced) <= set(allowed_keys(action))


@pytest.mark.parametrize("action", list(A))
def test_unknown_key_lists_the_allowed_ones(action: A) -> None:
    fields = config_errors(action, {**VALID[action], "Bucket": "x"})
    message = fields["ActionConfig.Bucket"]
    assert all(key in message for key in allowed_keys(action))


@pytest.mark.parametrize("action", list(A))
def test_wrong_type_is_named(action: A) -> None:
    key, value = WRONG_TYPE[action]
    assert f"ActionConfig.{key}" in config_errors(action, {**VALID[action], key: value})


@pytest.mark.parametrize("action", list(A))
def test_required_keys(action: A) -> None:
    required = REQUIRED.get(action, set())
    if required:
        fields = config_errors(action, None)
        assert set(fields) == {f"ActionConfig.{key}" for key in required}
        assert all(message == "is required" for message in fields.values())
    else:
        assert parse_action_config(action, None) == {}
        assert parse_action_config(action, "  ") == {}


@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "{not json", '{"to": 1, "to": 2}'])
def test_config_must_be_one_json_object(raw: str) -> None:
    assert "ActionConfig" in " ".join(config_errors(A.SendSms, raw))


def test_keys_are_case_insensitive_and_normalised() -> None:
    parsed = parse_action_config(
        A.CallApiPost, '{"URL": "https://example.org", "TimeoutSeconds": "15", "ContentType": null}'
    )
    assert parsed == {"url": "https://example.org", "timeoutSeconds": 15}
    assert (
        "given more than once"
        in config_errors(A.CallApiPost, '{"url": "https://a.org", "Url": "https://b.org"}')[
            "ActionConfig.url"
        ]
    )


@pytest.mark.parametrize("action", CALL_API)
@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.org/hook",
        "ftp://api.example.org/x",
        "https://user:pw@api.example.org/",
        "not a url",
        "https:///nohost",
    ],
)
def test_call_api_url_must_be_https(action: A, url: str) -> None:
    assert "ActionConfig.url" in config_errors(action, {"url": url})
    assert "ActionConfig.url" in coerce_errors(action, {"url": url})


@pytest.mark.parametrize("action", CALL_API)
def test_templated_url_is_accepted_at_save_then_checked_after_rendering(action: A) -> None:
    parsed = parse_action_config(action, '{"url": "{{ department.webhook_base }}/calls"}')
    assert parsed["url"] == "{{ department.webhook_base }}/calls"
    assert (
        coerce_rendered(action, {"url": "https://hooks.example.org/calls"})["url"]
        == "https://hooks.example.org/calls"
    )
    assert (
        "must use https"
        in coerce_errors(action, {"url": "http://hooks.example.org/calls"})["ActionConfig.url"]
    )
    assert coerce_errors(action, {"url": ""}) == {"ActionConfig.url": "is empty after rendering"}


@pytest.mark.parametrize(
    ("value", "ok"),
    [(1, True), (120, True), (0, False), (121, False), (-5, False), (True, False), (2.5, False)],
)
def test_timeout_range(value: Any, ok: bool) -> None:
    config = {"url": "https://example.org", "timeoutSeconds": value}
    if ok:
        assert parse_action_config(A.CallApiGet, json.dumps(config))["timeoutSeconds"] == value
    else:
        assert "ActionConfig.timeoutSeconds" in config_errors(A.CallApiGet, config)


def test_rendered_strings_become_numbers_and_booleans() -> None:
    coerced = coerce_rendered(A.CallApiPut, {"url": "https://example.org", "timeoutSeconds": " 45 "})
    assert coerced["timeoutSeconds"] == 45
    assert coerce_rendered(A.UploadFileFtp, {"overwrite": "false"}, now=NOW)["overwrite"] is False
    assert coerce_rendered(A.UploadFileSftp, {"overwrite": "True"}, now=NOW)["overwrite"] is True
    assert "ActionConfig.timeoutSeconds" in coerce_errors(
        A.CallApiPut, {"url": "https://example.org", "timeoutSeconds": "500"}
    )
    assert "ActionConfig.overwrite" in coerce_errors(A.UploadFileFtp, {"overwrite": "perhaps"})


@pytest.mark.parametrize(
    ("rendered", "expected"), [("true", True), (" No ", False), ("1", True), ("off", False), (False, False)]
)
def test_rendered_flags_read_as_booleans(rendered: object, expected: bool) -> None:
    assert coerce_rendered(A.UploadFileBox, {"overwrite": rendered}, now=NOW)["overwrite"] is expected


def test_templated_values_of_any_type_wait_for_rendering() -> None:
    raw = {
        "url": "https://example.org",
        "timeoutSeconds": "{{ t }}",
        "headers": {"X-Unit": "{{ unit.name }}"},
    }
    assert parse_action_config(A.CallApiPost, json.dumps(raw)) == raw
    assert parse_action_config(A.UploadFileFtp, '{"overwrite": "{% if x %}true{% endif %}"}') == {
        "overwrite": "{% if x %}true{% endif %}"
    }


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"X-Api-Version": "2", "Accept": "application/json"}, True),
        ({"X-Count": 3}, True),
        ({"Host": "evil.example.org"}, False),
        ({"content-length": "1"}, False),
        ({"Transfer-Encoding": "chunked"}, False),
        ({"CONNECTION": "close"}, False),
        ({"Bad Header": "x"}, False),
        ({"X-A": "x\r\nInjected: y"}, False),
        ({"X-A": ["x"]}, False),
        ({"X-A": "1", "x-a": "2"}, False),
        (["X-A: 1"], False),
    ],
)
def test_headers(headers: Any, ok: bool) -> None:
    config = {"url": "https://example.org", "headers": headers}
    if ok:
        parsed = parse_action_config(A.CallApiPost, json.dumps(config))
        assert parsed["headers"] == {k: str(v) for k, v in headers.items()}
    else:
        assert "ActionConfig.headers" in config_errors(A.CallApiPost, config)


def test_rendered_header_values_may_not_inject_lines() -> None:
    errors = coerce_errors(A.CallApiPost, {"url": "https://example.org", "headers": {"X-A": "a\nB: c"}})
    assert "ActionConfig.headers" in errors


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"to": "chief@example.org, not-an-address", "subject": "s"}, "to"),
        ({"to": "chief@example.org", "cc": "x@", "subject": "s"}, "cc"),
        ({"to": "chief@example.org", "subject": "s", "replyTo": "a@example.org, b@example.org"}, "replyTo"),
        ({"to": " , ", "subject": "s"}, "to"),
    ],
)
def test_static_email_addresses_are_checked(config: dict[str, Any], field: str) -> None:
    assert f"ActionConfig.{field}" in config_errors(A.SendEmail, config)


def test_email_addresses_are_normalised_and_templates_wait() -> None:
    parsed = parse_action_config(
        A.SendEmail, json.dumps({"to": " a@example.org ; b@EXAMPLE.org ", "subject": "s"})
    )
    assert parsed["to"] == "a@example.org, b@example.org"
    assert split_addresses(parsed["to"]) == ["a@example.org", "b@example.org"]
    templated = {"to": "{{ user.email }}, boss@example.org", "subject": "{{ call.name }}"}
    assert parse_action_config(A.SendEmail, json.dumps(templated)) == templated
    assert "ActionConfig.to" in coerce_errors(
        A.SendEmail, {"to": "John Smith, boss@example.org", "subject": "x"}
    )


def test_rendered_subject_is_one_line() -> None:
    coerced = coerce_rendered(
        A.SendEmail, {"to": "a@example.org", "subject": "Structure Fire\r\nBcc: x@example.org\n"}
    )
    assert coerced["subject"] == "Structure Fire Bcc: x@example.org"


def test_sms_numbers() -> None:
    assert parse_action_config(A.SendSms, '{"to": "+1 (555) 123-4567, +44 20 7946 0958"}') == {
        "to": "+15551234567,+442079460958"
    }
    assert "ActionConfig.to" in config_errors(A.SendSms, '{"to": "555-1234"}')


@pytest.mark.parametrize(
    ("action", "config", "field"),
    [
        (A.UploadFileDropbox, {"writeMode": "append"}, "writeMode"),
        (A.UploadFileDropbox, {"targetPath": "Calls"}, "targetPath"),
        (A.UploadFileS3, {"serverSideEncryption": "DES"}, "serverSideEncryption"),
        (A.UploadFileS3, {"serverSideEncryption": "AES256", "kmsKeyId": "alias/x"}, "kmsKeyId"),
        (A.UploadFileS3, {"s3Key": "bad\x00key"}, "s3Key"),
        (A.UploadFileFtp, {"filename": "a\x00.txt"}, "filename"),
        (A.UploadFileFtp, {"filename": "dir/a.txt"}, "filename"),
        (A.UploadFileFtp, {"remotePath": "/in\r\nDELE x"}, "remotePath"),
        (A.UploadFileSftp, {"filename": ".."}, "filename"),
        (A.UploadFileSftp, {"remotePath": "/a\x00b"}, "remotePath"),
        (A.UploadFileAzureBlob, {"blobName": "x" * 1025}, "blobName"),
        (A.UploadFileBox, {"folderId": "root"}, "folderId"),
        (A.UploadFileBox, {"overwrite": "maybe"}, "overwrite"),
        (A.SendTeamsMessage, {"themeColor": "red"}, "themeColor"),
        (A.SendSlackMessage, {"iconEmoji": "fire"}, "iconEmoji"),
        (A.SendDiscordMessage, {"avatarUrl": "http://cdn.example.org/a.png"}, "avatarUrl"),
        (A.SendDiscordMessage, {"username": "x" * 81}, "username"),
    ],
)
def test_static_value_rules(action: A, config: dict[str, Any], field: str) -> None:
    assert f"ActionConfig.{field}" in config_errors(action, config)


def test_nul_is_refused_even_in_templates() -> None:
    assert "ActionConfig.filename" in config_errors(A.UploadFileFtp, {"filename": "{{ x }}\x00"})


def test_box_folder_id_may_be_a_number() -> None:
    assert parse_action_config(A.UploadFileBox, '{"folderId": 12345}') == {"folderId": "12345"}


def test_enumerations_are_case_insensitive() -> None:
    assert parse_action_config(A.UploadFileDropbox, '{"writeMode": "Overwrite"}') == {
        "writeMode": "overwrite"
    }
    assert parse_action_config(A.UploadFileS3, '{"serverSideEncryption": "aes256"}') == {
        "serverSideEncryption": "AES256"
    }
    assert parse_action_config(A.SendTeamsMessage, '{"themeColor": "#ff8800"}') == {"themeColor": "FF8800"}


@pytest.mark.parametrize(
    ("action", "good", "bad"),
    [
        (
            A.SendTeamsMessage,
            "https://contoso.webhook.office.com/webhookb2/x",
            "https://contoso.office.com.evil.example/webhookb2/x",
        ),
        (
            A.SendTeamsMessage,
            "https://prod-01.westus.logic.azure.com/workflows/x",
            "http://contoso.webhook.office.com/x",
        ),
        (
            A.SendSlackMessage,
            "https://hooks.slack.com/services/T/B/x",
            "https://hooks.slack.com.evil.example/services/x",
        ),
        (A.SendDiscordMessage, "https://discord.com/api/webhooks/1/x", "https://discord.com/channels/1/x"),
        (
            A.SendDiscordMessage,
            "https://discordapp.com/api/webhooks/1/x",
            "https://hooks.slack.com/services/x",
        ),
    ],
)
def test_static_webhook_urls_follow_host_rules(action: A, good: str, bad: str) -> None:
    assert parse_action_config(action, json.dumps({"webhookUrl": good})) == {"webhookUrl": good}
    assert "ActionConfig.webhookUrl" in config_errors(action, {"webhookUrl": bad})
    # a templated one waits for rendering, then the same rules apply
    assert parse_action_config(action, '{"webhookUrl": "{{ department.hook }}"}')
    assert coerce_rendered(action, {"webhookUrl": good})["webhookUrl"] == good
    assert "ActionConfig.webhookUrl" in coerce_errors(action, {"webhookUrl": bad})


@pytest.mark.parametrize("action", [A.SendTeamsMessage, A.SendSlackMessage, A.SendDiscordMessage])
def test_webhook_url_required_without_credential(action: A) -> None:
    assert parse_action_config(action, "{}", has_credential=True) == {}
    assert parse_action_config(action, "{}") == {}  # unknown: not checked
    assert "ActionConfig.webhookUrl" in config_errors(action, "{}", has_credential=False)
    with pytest.raises(ActionConfigError):
        coerce_rendered(action, {"webhookUrl": ""}, has_credential=False)


def test_defaults_filled_after_rendering() -> None:
    assert coerce_rendered(A.UploadFileFtp, {}, now=NOW) == {
        "remotePath": "/",
        "filename": "workflow_20261129120304.txt",
        "overwrite": True,
    }
    assert coerce_rendered(A.UploadFileS3, {}, now=NOW) == {
        "s3Key": "workflow/2026/11/29/120304.txt",
        "contentType": "text/plain",
    }
    assert (
        coerce_rendered(A.UploadFileAzureBlob, {"blobName": ""}, now=NOW)["blobName"]
        == "workflow/2026/11/29/120304.txt"
    )
    assert coerce_rendered(A.UploadFileDropbox, {}, now=NOW) == {
        "targetPath": "/",
        "filename": "workflow_20261129120304.txt",
        "writeMode": "add",
    }
    assert coerce_rendered(A.UploadFileBox, {}, now=NOW) == {
        "folderId": "0",
        "filename": "workflow_20261129120304.txt",
        "overwrite": True,
    }
    assert coerce_rendered(A.SendTeamsMessage, {}) == {"themeColor": "0076D7"}
    assert coerce_rendered(A.CallApiDelete, {"url": "https://example.org"}) == {
        "url": "https://example.org",
        "contentType": "application/json",
        "timeoutSeconds": 30,
        "headers": {},
    }


def test_unknown_action_type() -> None:
    with pytest.raises(ActionConfigError) as info:
        parse_action_config(99, "{}")  # type: ignore[arg-type]
    assert dict(info.value.fields) == {"ActionType": "unknown action type 99"}


def test_oversized_config_is_refused() -> None:
    big = json.dumps({"url": "https://example.org/" + "a" * 70_000})
    assert "ActionConfig" in config_errors(A.CallApiPost, big)
