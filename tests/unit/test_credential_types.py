import base64
import json
import struct
import warnings
from typing import Any

import asyncssh
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.credential_types import (
    MASK,
    SECRET_FIELDS,
    CredentialValidationError,
    credential_fields,
    masked,
    merge_update,
    split_secrets,
    validate_credential_data,
)
from shared.enums import CredentialType as C

# The test keys use 1-2 bcrypt rounds for speed, which bcrypt warns about.
pytestmark = pytest.mark.filterwarnings("ignore:.*bcrypt.kdf.*:UserWarning")

SSH_KEY = asyncssh.generate_private_key("ssh-ed25519")
SSH_PRIVATE = SSH_KEY.export_private_key().decode()
# One bcrypt round keeps the tests fast; the default (128) costs over a second per check.
with warnings.catch_warnings(action="ignore", category=UserWarning):
    SSH_PRIVATE_ENCRYPTED = SSH_KEY.export_private_key(passphrase="open sesame", rounds=1).decode()
SSH_PUBLIC_LINE = SSH_KEY.export_public_key().decode().strip()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
BOX_PEM = RSA_KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.BestAvailableEncryption(b"box-pass"),
).decode()

SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-secret-part"
DISCORD_URL = "https://discord.com/api/webhooks/123/discord-secret-part"
TEAMS_URL = "https://contoso.webhook.office.com/webhookb2/teams-secret-part"

VALID: dict[C, dict[str, Any]] = {
    C.Smtp: {
        "host": "smtp.example.org",
        "port": 465,
        "username": "mailer",
        "password": "smtp-secret",
        "security": "tls",
        "fromAddress": "alerts@example.org",
        "fromName": "Station 7",
    },
    C.Twilio: {"accountSid": "AC" + "0" * 32, "authToken": "twilio-secret", "fromNumber": "+15551234567"},
    C.Ftp: {"host": "ftp.example.org", "username": "ftpuser", "password": "ftp-secret"},
    C.Sftp: {
        "host": "sftp.example.org",
        "username": "sftpuser",
        "privateKey": SSH_PRIVATE_ENCRYPTED,
        "privateKeyPassphrase": "open sesame",
        "hostKey": SSH_PUBLIC_LINE,
    },
    C.AwsS3: {
        "accessKeyId": "AKIAEXAMPLE0000",
        "secretAccessKey": "s3-secret",
        "sessionToken": "s3-session-secret",
        "bucketName": "station-7-reports",
        "endpointUrl": "http://127.0.0.1:9000",
    },
    C.HttpBearer: {"token": "bearer-secret", "allowedOrigins": ["https://api.example.org"]},
    C.HttpBasic: {
        "username": "api",
        "password": "basic-secret",
        "allowedOrigins": ["https://api.example.org"],
    },
    C.HttpApiKey: {
        "headerName": "X-Token",
        "apiKey": "apikey-secret",
        "allowedOrigins": ["https://api.example.org"],
    },
    C.MicrosoftTeams: {"webhookUrl": TEAMS_URL},
    C.Slack: {"webhookUrl": SLACK_URL, "botToken": "xoxb-slack-bot-secret"},
    C.Discord: {"webhookUrl": DISCORD_URL},
    C.AzureBlobStorage: {
        "accountName": "devstoreaccount1",
        "accountKey": "YXp1cmUtc2VjcmV0",
        "accountUrl": "http://127.0.0.1:10000/devstoreaccount1",
        "containerName": "workflow-output",
    },
    C.Box: {
        "clientId": "box-client",
        "clientSecret": "box-client-secret",
        "enterpriseId": "123456",
        "publicKeyId": "pk1",
        "privateKey": BOX_PEM,
        "privateKeyPassword": "box-pass",
    },
    C.Dropbox: {
        "refreshToken": "dropbox-refresh-secret",
        "appKey": "appkey",
        "appSecret": "dropbox-app-secret",
    },
}

REQUIRED: dict[C, list[str]] = {
    C.Smtp: ["host", "fromAddress"],
    C.Twilio: ["accountSid", "authToken", "fromNumber"],
    C.Ftp: ["host", "username", "password"],
    C.Sftp: ["host", "username", "privateKey"],
    C.AwsS3: ["accessKeyId", "secretAccessKey", "bucketName"],
    C.HttpBearer: ["token"],
    C.HttpBasic: ["username", "password"],
    C.HttpApiKey: ["apiKey"],
    C.MicrosoftTeams: ["webhookUrl"],
    C.Slack: [],
    C.Discord: ["webhookUrl"],
    C.AzureBlobStorage: ["containerName", "accountName", "accountKey"],
    C.Box: ["clientId", "clientSecret", "enterpriseId", "publicKeyId", "privateKey"],
    C.Dropbox: ["refreshToken", "appKey", "appSecret"],
}


def errors_of(ctype: C, data: Any) -> dict[str, str]:
    with pytest.raises(CredentialValidationError) as info:
        validate_credential_data(ctype, data)
    assert str(info.value)  # readable
    return dict(info.value.fields)


def test_every_type_has_an_example() -> None:
    assert set(VALID) == set(C)
    assert set(SECRET_FIELDS) == set(C)


@pytest.mark.parametrize("ctype", list(C))
def test_valid_example_round_trips(ctype: C) -> None:
    data = validate_credential_data(ctype, VALID[ctype])
    for key, value in VALID[ctype].items():
        assert key in data
        if isinstance(value, str) and key not in {"privateKey"}:
            assert data[key] == value
    # the canonical output is itself valid input, unchanged
    assert validate_credential_data(ctype, data) == data


@pytest.mark.parametrize(("ctype", "field"), [(c, f) for c, fields in REQUIRED.items() for f in fields])
def test_each_required_field_missing_is_named(ctype: C, field: str) -> None:
    data = {k: v for k, v in VALID[ctype].items() if k != field}
    if ctype is C.Sftp and field == "privateKey":
        data.pop("privateKeyPassphrase")
        field = "password"  # "password or privateKey" is reported on password
    if ctype is C.AzureBlobStorage and field == "accountName":
        data.pop("accountKey")
        data.pop("accountUrl")
        field = "connectionString"
    fields = errors_of(ctype, data)
    assert f"Data.{field}" in fields, fields


@pytest.mark.parametrize("ctype", list(C))
def test_unknown_field_is_rejected_by_name(ctype: C) -> None:
    fields = errors_of(ctype, {**VALID[ctype], "surprise": "x"})
    assert "Data.surprise" in fields
    assert "allowed:" in fields["Data.surprise"]


def test_defaults_are_filled_and_none_dropped() -> None:
    data = validate_credential_data(
        C.Smtp, {"host": "smtp.example.org", "fromAddress": "a@example.org", "fromName": None, "port": ""}
    )
    assert data == {
        "host": "smtp.example.org",
        "port": 587,
        "security": "starttls",
        "fromAddress": "a@example.org",
    }
    ftp = validate_credential_data(C.Ftp, VALID[C.Ftp])
    assert (ftp["port"], ftp["passive"], ftp["tls"]) == (21, True, "none")
    assert validate_credential_data(C.Sftp, {**VALID[C.Sftp]})["port"] == 22
    assert validate_credential_data(C.AwsS3, VALID[C.AwsS3])["region"] == "us-east-1"
    assert (
        validate_credential_data(
            C.HttpApiKey, {"apiKey": "k", "allowedOrigins": ["https://api.example.org"]}
        )["headerName"]
        == "X-Api-Key"
    )


def test_keys_are_case_insensitive_and_strings_stripped() -> None:
    data = validate_credential_data(C.Ftp, {"HOST": " ftp.Example.org ", "UserName": "u ", "PASSWORD": " p"})
    assert data["host"] == "ftp.example.org"
    assert data["username"] == "u"
    assert data["password"] == "p"
    fields = errors_of(C.Ftp, {**VALID[C.Ftp], "Host": "other.example.org"})
    assert "given more than once" in fields["Data.host"]


@pytest.mark.parametrize(
    ("data", "security"),
    [
        ({"useSsl": True}, "starttls"),
        ({"useSsl": False}, "none"),
        ({"useSsl": True, "port": 465}, "tls"),
        ({"useSsl": False, "security": "tls"}, "tls"),
    ],
)
def test_smtp_legacy_use_ssl_maps_to_security(data: dict[str, Any], security: str) -> None:
    result = validate_credential_data(
        C.Smtp, {"host": "smtp.example.org", "fromAddress": "a@example.org", **data}
    )
    assert result["security"] == security
    assert "useSsl" not in result


@pytest.mark.parametrize(
    ("ctype", "change", "field"),
    [
        (C.Smtp, {"port": 0}, "port"),
        (C.Smtp, {"port": 65536}, "port"),
        (C.Smtp, {"port": "many"}, "port"),
        (C.Smtp, {"host": "https://smtp.example.org"}, "host"),
        (C.Smtp, {"host": "smtp.example.org:25"}, "host"),
        (C.Smtp, {"security": "ssl3"}, "security"),
        (C.Smtp, {"fromAddress": "not-an-address"}, "fromAddress"),
        (C.Smtp, {"fromName": "Evil\r\nBcc: x@example.org"}, "fromName"),
        (C.Smtp, {"username": None}, "username"),
        (C.Twilio, {"fromNumber": "555-1234"}, "fromNumber"),
        (C.Twilio, {"accountSid": "SK123"}, "accountSid"),
        (C.Ftp, {"tls": "implicit"}, "tls"),
        (C.Sftp, {"hostKey": "not a key"}, "hostKey"),
        (C.Sftp, {"hostKey": "SHA256:short"}, "hostKey"),
        (C.Sftp, {"privateKeyPassphrase": "wrong"}, "privateKeyPassphrase"),
        (C.Sftp, {"privateKey": "-----BEGIN NONSENSE-----"}, "privateKey"),
        (C.AwsS3, {"bucketName": "Bad_Bucket"}, "bucketName"),
        (C.AwsS3, {"endpointUrl": "http://s3.example.org"}, "endpointUrl"),
        (C.AwsS3, {"endpointUrl": "ftp://127.0.0.1"}, "endpointUrl"),
        (C.HttpBasic, {"username": "a:b"}, "username"),
        (C.HttpApiKey, {"headerName": "Host"}, "headerName"),
        (C.HttpApiKey, {"headerName": "Bad Header"}, "headerName"),
        (C.HttpBearer, {"token": "abc\ndef"}, "token"),
        (C.AzureBlobStorage, {"containerName": "Bad--Name"}, "containerName"),
        (C.AzureBlobStorage, {"accountUrl": "http://myaccount.blob.core.windows.net"}, "accountUrl"),
        (C.Box, {"privateKeyPassword": "wrong"}, "privateKey"),
        (C.Box, {"enterpriseId": "acme"}, "enterpriseId"),
    ],
)
def test_bad_values_are_reported_on_their_field(ctype: C, change: dict[str, Any], field: str) -> None:
    fields = errors_of(ctype, {**VALID[ctype], **change})
    assert f"Data.{field}" in fields, fields


def test_error_messages_never_echo_secret_values() -> None:
    with pytest.raises(CredentialValidationError) as info:
        validate_credential_data(C.Smtp, {"host": "smtp.example.org", "password": ["topsecret-value"]})
    assert "topsecret-value" not in str(info.value)
    assert "Data.password" in dict(info.value.fields)


@pytest.mark.parametrize(
    ("ctype", "url", "ok"),
    [
        (C.MicrosoftTeams, "https://contoso.webhook.office.com/webhookb2/x", True),
        (C.MicrosoftTeams, "https://prod-1.westus.logic.azure.com/workflows/x", True),
        (C.MicrosoftTeams, "https://evil.example.com/webhook.office.com/x", False),
        (C.MicrosoftTeams, "http://contoso.webhook.office.com/webhookb2/x", False),
        (C.Slack, "https://hooks.slack.com/services/x", True),
        (C.Slack, "https://hooks.slack.com.evil.example/services/x", False),
        (C.Discord, "https://discordapp.com/api/webhooks/1/x", True),
        (C.Discord, "https://discord.com/other/1/x", False),
    ],
)
def test_webhook_credentials_follow_host_rules(ctype: C, url: str, ok: bool) -> None:
    if ok:
        assert validate_credential_data(ctype, {"webhookUrl": url})["webhookUrl"] == url
    else:
        assert "Data.webhookUrl" in errors_of(ctype, {"webhookUrl": url})


def test_slack_and_discord_need_a_webhook_or_bot_token() -> None:
    assert "Data.webhookUrl" in errors_of(C.Slack, {})
    assert validate_credential_data(C.Slack, {"botToken": "xoxb-1"}) == {"botToken": "xoxb-1"}


# --- either/or rules --------------------------------------------------------------------------------


def test_sftp_password_or_private_key() -> None:
    base = {"host": "sftp.example.org", "username": "u"}
    assert "Data.password" in errors_of(C.Sftp, base)
    assert validate_credential_data(C.Sftp, {**base, "password": "pw"})["password"] == "pw"
    assert "privateKey" in validate_credential_data(C.Sftp, {**base, "privateKey": SSH_PRIVATE})
    both = validate_credential_data(C.Sftp, {**base, "privateKey": SSH_PRIVATE, "password": "pw"})
    assert {"password", "privateKey"} <= both.keys()
    assert "Data.privateKeyPassphrase" in errors_of(C.Sftp, {**base, "privateKey": SSH_PRIVATE_ENCRYPTED})
    assert "Data.privateKeyPassphrase" in errors_of(
        C.Sftp, {**base, "password": "pw", "privateKeyPassphrase": "x"}
    )


def with_bcrypt_rounds(key: str, rounds: int) -> str:
    """The same OpenSSH key file with its bcrypt round count rewritten (exporting one would take ages)."""
    lines = key.strip().splitlines()
    blob = bytearray(base64.b64decode("".join(lines[1:-1])))
    offset = len(b"openssh-key-v1\x00")
    for _ in range(2):  # cipher name, kdf name
        offset += 4 + struct.unpack_from(">I", blob, offset)[0]
    salt_length = struct.unpack_from(">I", blob, offset + 4)[0]
    struct.pack_into(">I", blob, offset + 8 + salt_length, rounds)
    body = base64.b64encode(bytes(blob)).decode()
    return "\n".join([lines[0], *(body[i : i + 70] for i in range(0, len(body), 70)), lines[-1]])


def test_sftp_refuses_keys_too_costly_to_decrypt() -> None:
    # a modest count is tried (and here fails, since the rounds feed the key derivation)
    cheap = with_bcrypt_rounds(SSH_PRIVATE_ENCRYPTED, 2)
    assert errors_of(C.Sftp, {**VALID[C.Sftp], "privateKey": cheap}) == {
        "Data.privateKeyPassphrase": "does not decrypt privateKey"
    }
    costly = with_bcrypt_rounds(SSH_PRIVATE_ENCRYPTED, 100_000)
    fields = errors_of(C.Sftp, {**VALID[C.Sftp], "privateKey": costly})
    assert "100000 bcrypt rounds" in fields["Data.privateKey"]


def test_sftp_accepts_pkcs8_pem_keys() -> None:
    pem = SSH_KEY.export_private_key("pkcs8-pem", passphrase="pw").decode()
    data = {**VALID[C.Sftp], "privateKey": pem, "privateKeyPassphrase": "pw"}
    assert validate_credential_data(C.Sftp, data)["privateKey"] == pem.strip()


def test_sftp_accepts_a_fingerprint_pin() -> None:
    fingerprint = SSH_KEY.get_fingerprint("sha256")
    data = validate_credential_data(C.Sftp, {**VALID[C.Sftp], "hostKey": fingerprint})
    assert data["hostKey"] == fingerprint


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        ({"connectionString": "UseDevelopmentStorage=true"}, True),
        ({"connectionString": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5"}, True),
        (
            {
                "connectionString": "AccountName=devstoreaccount1;AccountKey=a2V5;"
                "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1"
            },
            True,
        ),
        (
            {
                "connectionString": "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=1&sig=x"
            },
            True,
        ),
        ({"connectionString": "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5"}, False),
        ({"connectionString": "just some text"}, False),
        ({"accountName": "acct", "accountKey": "a2V5"}, True),
        ({"accountName": "acct", "sasToken": "?sv=2024&sig=abc"}, True),
        ({"accountName": "acct"}, False),
        ({"accountKey": "a2V5"}, False),
        ({"accountName": "acct", "accountKey": "a2V5", "sasToken": "sv=1&sig=x"}, False),
        ({"connectionString": "UseDevelopmentStorage=true", "accountName": "acct"}, False),
        ({"connectionString": "UseDevelopmentStorage=true", "accountKey": "a2V5"}, False),
        ({}, False),
    ],
)
def test_azure_exactly_one_way_to_authenticate(data: dict[str, Any], ok: bool) -> None:
    data = {**data, "containerName": "output"}
    if ok:
        validate_credential_data(C.AzureBlobStorage, data)
    else:
        errors_of(C.AzureBlobStorage, data)


def test_azure_sas_token_loses_its_question_mark() -> None:
    data = validate_credential_data(
        C.AzureBlobStorage, {"accountName": "acct", "sasToken": "?sv=2024&sig=abc", "containerName": "output"}
    )
    assert data["sasToken"] == "sv=2024&sig=abc"


def test_box_jwt_or_developer_token() -> None:
    assert validate_credential_data(C.Box, {"developerToken": "dev-token"}) == {"developerToken": "dev-token"}
    fields = errors_of(C.Box, {**VALID[C.Box], "developerToken": "dev-token"})
    assert "Data.developerToken" in fields
    fields = errors_of(C.Box, {})
    assert set(fields) == {f"Data.{name}" for name in REQUIRED[C.Box]}
    unencrypted = RSA_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwt = {**VALID[C.Box], "privateKey": unencrypted}
    del jwt["privateKeyPassword"]
    assert validate_credential_data(C.Box, jwt)["privateKey"] == unencrypted.strip()
    assert "Data.privateKeyPassword" in errors_of(C.Box, {**VALID[C.Box], "privateKeyPassword": None})
    assert errors_of(C.Box, {**jwt, "privateKeyPassword": "pw"}) == {
        "Data.privateKeyPassword": "must be empty: privateKey is not encrypted"
    }


def test_box_enterprise_id_may_be_a_number() -> None:
    assert (
        validate_credential_data(C.Box, {**VALID[C.Box], "enterpriseId": 123456})["enterpriseId"] == "123456"
    )


def test_twilio_from_number_or_messaging_service() -> None:
    base = {"accountSid": "AC" + "1" * 32, "authToken": "t"}
    assert "Data.fromNumber" in errors_of(C.Twilio, base)
    assert validate_credential_data(C.Twilio, {**base, "messagingServiceSid": "MG" + "2" * 32})
    assert (
        validate_credential_data(C.Twilio, {**base, "fromNumber": "+1 (555) 123-4567"})["fromNumber"]
        == "+15551234567"
    )
    assert validate_credential_data(C.Twilio, {**base, "fromNumber": "Station7"})["fromNumber"] == "Station7"


def test_bearer_prefix_is_not_doubled() -> None:
    assert (
        validate_credential_data(
            C.HttpBearer, {"token": "Bearer abc.def", "allowedOrigins": ["https://api.example.org"]}
        )["token"]
        == "abc.def"
    )


# --- secrets: split, mask, merge ---------------------------------------------------------------------


def secret_values(ctype: C) -> list[str]:
    return [v for k, v in VALID[ctype].items() if k in SECRET_FIELDS[ctype]]


@pytest.mark.parametrize("ctype", list(C))
def test_masking_never_exposes_a_secret(ctype: C) -> None:
    data = validate_credential_data(ctype, VALID[ctype])
    public, secret = split_secrets(ctype, data)
    assert set(secret) == SECRET_FIELDS[ctype] & set(data)
    assert not set(public) & SECRET_FIELDS[ctype]
    shown = masked(ctype, public, secret.keys())
    text = json.dumps(shown, ensure_ascii=False)
    for value in secret_values(ctype):
        assert value not in text
    for name in secret:
        assert shown[name] == MASK
    for name, value in public.items():
        assert shown[name] == value
    # a secret that slipped into the public part is masked all the same
    leaked = masked(ctype, data, ())
    assert all(value not in json.dumps(leaked, ensure_ascii=False) for value in secret_values(ctype))


def test_masked_shows_only_secrets_that_are_set() -> None:
    shown = masked(C.Sftp, {"host": "h", "username": "u", "port": 22}, ["password"])
    assert shown == {"host": "h", "port": 22, "username": "u", "password": MASK}


@pytest.mark.parametrize("ctype", list(C))
def test_sending_back_the_masked_view_changes_nothing(ctype: C) -> None:
    stored = validate_credential_data(ctype, VALID[ctype])
    public, secret = split_secrets(ctype, stored)
    assert merge_update(ctype, stored, masked(ctype, public, secret)) == stored


def test_merge_keeps_omitted_and_masked_secrets_and_replaces_the_rest() -> None:
    stored = validate_credential_data(C.Smtp, VALID[C.Smtp])
    update = {k: v for k, v in stored.items() if k != "password"} | {"fromName": "Station 9"}
    merged = merge_update(C.Smtp, stored, update)
    assert merged["password"] == "smtp-secret"
    assert merged["fromName"] == "Station 9"

    merged = merge_update(C.Smtp, stored, {**stored, "password": MASK})
    assert merged["password"] == "smtp-secret"

    merged = merge_update(C.Smtp, stored, {**stored, "password": "new-secret"})
    assert merged["password"] == "new-secret"


def test_merge_replaces_public_fields_as_sent() -> None:
    stored = validate_credential_data(C.Smtp, VALID[C.Smtp])
    merged = merge_update(
        C.Smtp,
        stored,
        {
            "host": "smtp.example.org",
            "port": 465,
            "security": "tls",
            "fromAddress": "b@example.org",
            "username": "m",
        },
    )
    assert merged == {
        "host": "smtp.example.org",
        "port": 465,
        "username": "m",
        "password": "smtp-secret",
        "security": "tls",
        "fromAddress": "b@example.org",
    }


def test_merge_null_clears_a_secret_only_where_it_may_be_absent() -> None:
    stored = validate_credential_data(C.AwsS3, VALID[C.AwsS3])
    merged = merge_update(C.AwsS3, stored, {**stored, "sessionToken": None})
    assert "sessionToken" not in merged
    assert merged["secretAccessKey"] == "s3-secret"
    with pytest.raises(CredentialValidationError) as info:
        merge_update(C.AwsS3, stored, {**stored, "secretAccessKey": ""})
    assert "Data.secretAccessKey" in dict(info.value.fields)


def test_merge_can_switch_authentication_mode() -> None:
    stored = validate_credential_data(C.AzureBlobStorage, VALID[C.AzureBlobStorage])
    update = {"connectionString": "UseDevelopmentStorage=true", "containerName": "output", "accountKey": None}
    assert merge_update(C.AzureBlobStorage, stored, update) == {
        "connectionString": "UseDevelopmentStorage=true",
        "containerName": "output",
    }
    with pytest.raises(CredentialValidationError):
        # the kept accountKey conflicts with the new connection string
        merge_update(
            C.AzureBlobStorage,
            stored,
            {"connectionString": "UseDevelopmentStorage=true", "containerName": "o"},
        )


def test_merge_of_empty_update_fails_instead_of_corrupting() -> None:
    stored = validate_credential_data(C.Ftp, VALID[C.Ftp])
    with pytest.raises(CredentialValidationError) as info:
        merge_update(C.Ftp, stored, {})
    assert {"Data.host", "Data.username"} <= set(dict(info.value.fields))


def test_merge_rejects_unknown_keys_and_accepts_any_casing() -> None:
    stored = validate_credential_data(C.HttpBasic, VALID[C.HttpBasic])
    with pytest.raises(CredentialValidationError):
        merge_update(C.HttpBasic, stored, {"username": "api", "nope": 1})
    update = {"USERNAME": "api2", "Password": MASK, "allowedorigins": ["https://api.example.org"]}
    assert merge_update(C.HttpBasic, stored, update) == {
        "username": "api2",
        "password": "basic-secret",
        "allowedOrigins": ["https://api.example.org"],
    }


@pytest.mark.parametrize(
    ("ctype", "change", "secrets"),
    [
        (C.Smtp, {"host": "evil.example"}, ["password"]),
        (C.Smtp, {"port": 2525}, ["password"]),
        (C.Smtp, {"security": "none"}, ["password"]),
        (C.Ftp, {"host": "evil.example"}, ["password"]),
        (C.Sftp, {"host": "evil.example"}, ["privateKey", "privateKeyPassphrase"]),
        (C.Sftp, {"hostKey": None}, ["privateKey", "privateKeyPassphrase"]),
        (C.AwsS3, {"endpointUrl": "https://evil.example"}, ["secretAccessKey"]),
        (C.AzureBlobStorage, {"accountUrl": "https://evil.example/acct"}, ["accountKey"]),
        (C.AzureBlobStorage, {"accountName": "evilaccount"}, ["accountKey"]),
        (C.HttpBearer, {"allowedOrigins": ["https://evil.example"]}, ["token"]),
        (C.HttpBasic, {"allowedOrigins": ["https://api.example.org", "https://evil.example"]}, ["password"]),
        (C.HttpApiKey, {"allowedOrigins": "https://evil.example"}, ["apiKey"]),
    ],
)
def test_re_pointing_a_credential_requires_its_secrets_again(
    ctype: C, change: dict[str, Any], secrets: list[str]
) -> None:
    stored = validate_credential_data(ctype, VALID[ctype])
    for update in ({**stored, **change}, {**stored, **change, **dict.fromkeys(secrets, MASK)}):
        with pytest.raises(CredentialValidationError) as info:
            merge_update(ctype, stored, {k: v for k, v in update.items() if k not in secrets or v == MASK})
        fields = dict(info.value.fields)
        for name in secrets:
            assert "sent again" in fields[f"Data.{name}"], fields
    # Sending the secrets again is accepted, and so is an update that moves nothing.
    fresh = {name: VALID[ctype][name] for name in secrets}  # sent again (the same values will do)
    renewed = merge_update(ctype, stored, {**stored, **change, **fresh})
    assert all(renewed.get(name) for name in secrets)
    assert merge_update(ctype, stored, {**stored, **dict.fromkeys(secrets, MASK)}) == stored


@pytest.mark.parametrize("ctype", [C.HttpBearer, C.HttpBasic, C.HttpApiKey])
def test_http_credentials_may_be_stored_without_origins(ctype: C) -> None:
    # Clients may send only the type's own fields (docs/api-behaviour.md); the API pins the origin on first use.
    data = {k: v for k, v in VALID[ctype].items() if k != "allowedOrigins"}
    assert "allowedOrigins" not in validate_credential_data(ctype, data)


def test_a_credential_stored_without_origins_is_bound_only_with_its_secret_again() -> None:
    legacy = {"token": "old-secret"}  # stored before origins, or not yet pinned by a step
    with pytest.raises(CredentialValidationError) as info:
        merge_update(C.HttpBearer, legacy, {"token": MASK, "allowedOrigins": ["https://api.example.org"]})
    assert "sent again" in dict(info.value.fields)["Data.token"]
    assert merge_update(C.HttpBearer, legacy, {"token": MASK}) == legacy


def test_an_update_that_leaves_out_origins_keeps_them_and_null_clears_them() -> None:
    pinned = {"token": "secret", "allowedOrigins": ["https://api.example.org"]}
    assert merge_update(C.HttpBearer, pinned, {"TOKEN": MASK}) == pinned
    assert merge_update(C.HttpBearer, pinned, {"token": "new"}) == {**pinned, "token": "new"}
    # Clearing them moves where the secret may go: only with the secret sent again.
    with pytest.raises(CredentialValidationError) as info:
        merge_update(C.HttpBearer, pinned, {"token": MASK, "allowedOrigins": None})
    assert "sent again" in dict(info.value.fields)["Data.token"]
    assert merge_update(C.HttpBearer, pinned, {"token": "new", "allowedOrigins": None}) == {"token": "new"}


@pytest.mark.parametrize(
    "value",
    [
        "http://api.example.org",
        "https://api.example.org/path",
        "https://u:p@api.example.org",
        "api.example.org",
        [],
    ],
)
def test_allowed_origins_must_be_https_origins(value: object) -> None:
    assert "Data.allowedOrigins" in " ".join(errors_of(C.HttpBearer, {"token": "t", "allowedOrigins": value}))


def test_data_must_be_an_object_and_type_known() -> None:
    assert "Data" in errors_of(C.Ftp, ["host"])
    with pytest.raises(CredentialValidationError) as info:
        validate_credential_data(99, {})  # type: ignore[arg-type]
    assert "CredentialType" in dict(info.value.fields)


def test_credential_fields_lists_canonical_names() -> None:
    assert credential_fields(C.Dropbox) == ["refreshToken", "appKey", "appSecret"]
    assert "useSsl" not in credential_fields(C.Smtp)
