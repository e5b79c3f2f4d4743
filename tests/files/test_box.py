"""UploadFileBox against a local HTTPS peer playing Box's token and upload endpoints."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.executor.actions.base import ActionDeps, ActionError
from services.executor.registry import ACTIONS
from shared.actions.configs import coerce_rendered, parse_action_config
from shared.enums import ActionType
from tests.files.conftest import at_base_url, make_ctx
from tests.peers.https_server import HttpsPeer, RecordedRequest, Reply
from tests.peers.listener import unused_port
from tests.peers.tls import LocalCA

upload_box = ACTIONS[ActionType.UploadFileBox]

CONTENT = "Shift trade filled: Capt. Diaz covers B-shift 2024-06-14 ✓\n"
UPLOAD = "/api/2.0/files/content"
TOKEN = "/oauth2/token"
BOX_URLS = ("box_api_base_url", "box_upload_base_url")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwt_credential(rsa_key: rsa.RSAPrivateKey) -> dict[str, str]:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"key pass"),
    ).decode()
    return {
        "clientId": "box-client-id",
        "clientSecret": "box-client-secret",
        "enterpriseId": "4242",
        "publicKeyId": "kid-77",
        "privateKey": pem,
        "privateKeyPassword": "key pass",
    }


@pytest.fixture
async def box(local_ca: LocalCA):
    async with HttpsPeer(local_ca) as peer:
        peer.reply("POST", TOKEN, Reply(body={"access_token": "box-access-token", "expires_in": 3600}))
        yield peer


@pytest.fixture
def box_deps(deps: ActionDeps, box: HttpsPeer) -> ActionDeps:
    return at_base_url(deps, box.url("").rstrip("/"), *BOX_URLS)


def box_ctx(credential: dict[str, str], config: Mapping[str, Any]):
    return make_ctx(ActionType.UploadFileBox, content=CONTENT, config=config, credential=credential)


def multipart_parts(request: RecordedRequest) -> list[tuple[Any, Any]]:
    """(field name, payload) of every part, in the order they were sent."""
    raw = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode() + request.body
    message = email.message_from_bytes(raw, policy=email.policy.HTTP)
    return [
        (part.get_param("name", header="content-disposition"), part.get_payload(decode=True))
        for part in message.iter_parts()
    ]


def created(file_id: str) -> Reply:
    return Reply(status=201, body={"total_count": 1, "entries": [{"type": "file", "id": file_id}]})


async def test_jwt_auth_and_multipart_upload(
    box: HttpsPeer, box_deps: ActionDeps, rsa_key: rsa.RSAPrivateKey, jwt_credential: dict[str, str]
) -> None:
    box.reply("POST", UPLOAD, created("9001"))

    result = await upload_box(
        box_ctx(jwt_credential, {"folderId": "123", "filename": "shift-trade.txt"}), box_deps
    )

    [token_request] = box.requests_to("POST", TOKEN)
    form = {k: v[0] for k, v in parse_qs(token_request.body.decode()).items()}
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert form["client_id"] == "box-client-id"
    assert form["client_secret"] == "box-client-secret"
    claims = jwt.decode(
        form["assertion"], rsa_key.public_key(), algorithms=["RS256"], audience=box.url(TOKEN)
    )
    assert claims["iss"] == "box-client-id"
    assert claims["sub"] == "4242"
    assert claims["box_sub_type"] == "enterprise"
    assert claims["exp"] - claims["iat"] <= 60
    assert jwt.get_unverified_header(form["assertion"])["kid"] == "kid-77"

    [upload] = box.requests_to("POST", UPLOAD)
    assert upload.headers["authorization"] == "Bearer box-access-token"
    [(first, attributes), (second, payload)] = multipart_parts(upload)
    assert (first, json.loads(attributes)) == (
        "attributes",
        {"name": "shift-trade.txt", "parent": {"id": "123"}},
    )
    assert (second, payload) == ("file", CONTENT.encode())
    assert result.message == f"Box upload: 123/shift-trade.txt (file id 9001, {len(CONTENT.encode())} bytes)"


async def test_name_conflict_uploads_a_new_version(
    box: HttpsPeer, box_deps: ActionDeps, jwt_credential: dict[str, str]
) -> None:
    conflict = {
        "type": "error",
        "status": 409,
        "code": "item_name_in_use",
        "context_info": {"conflicts": {"type": "file", "id": "555", "name": "log.txt"}},
    }
    box.reply("POST", UPLOAD, Reply(status=409, body=conflict))
    box.reply("POST", "/api/2.0/files/555/content", created("555"))

    result = await upload_box(box_ctx(jwt_credential, {"folderId": "0", "filename": "log.txt"}), box_deps)

    [version] = box.requests_to("POST", "/api/2.0/files/555/content")
    [(_, attributes), (_, payload)] = multipart_parts(version)
    assert json.loads(attributes) == {"name": "log.txt"}
    assert payload == CONTENT.encode()
    assert "file id 555" in result.message


@pytest.mark.parametrize(
    ("saved", "rendered"),
    [
        pytest.param('{"filename": "log.txt", "overwrite": false}', {}, id="static"),
        pytest.param(
            '{"filename": "log.txt", "overwrite": "{{ keep }}"}', {"overwrite": "no"}, id="templated"
        ),
    ],
)
async def test_name_conflict_without_overwrite_is_permanent(
    box: HttpsPeer, box_deps: ActionDeps, jwt_credential: dict[str, str], saved: str, rendered: dict[str, str]
) -> None:
    """``overwrite`` is a documented UploadFileBox key: the API saves it and the engine's check after
    rendering hands it to the upload, which then keeps the existing file."""
    config = coerce_rendered(
        ActionType.UploadFileBox,
        parse_action_config(ActionType.UploadFileBox, saved) | rendered,
        has_credential=True,
    )
    conflict = {
        "status": 409,
        "code": "item_name_in_use",
        "context_info": {"conflicts": {"type": "file", "id": "555"}},
    }
    box.reply("POST", UPLOAD, Reply(status=409, body=conflict))

    with pytest.raises(ActionError) as caught:
        await upload_box(box_ctx(jwt_credential, config), box_deps)

    assert caught.value.permanent
    assert "0/log.txt already exists (file id 555) and overwrite is false" in caught.value.message
    assert box.requests_to("POST", "/api/2.0/files/555/content") == []


async def test_rejected_client_secret_is_permanent(
    box: HttpsPeer, box_deps: ActionDeps, jwt_credential: dict[str, str]
) -> None:
    box.reply(
        "POST", TOKEN, Reply(status=400, body={"error": "invalid_client", "error_description": "bad secret"})
    )

    with pytest.raises(ActionError) as caught:
        await upload_box(box_ctx(jwt_credential, {"filename": "x.txt"}), box_deps)

    assert caught.value.permanent
    assert "invalid_client" in caught.value.message
    assert "box-client-secret" not in caught.value.message
    assert box.requests_to("POST", UPLOAD) == []


async def test_wrong_private_key_password_is_permanent(
    box: HttpsPeer, box_deps: ActionDeps, jwt_credential
) -> None:
    with pytest.raises(ActionError) as caught:
        await upload_box(box_ctx(jwt_credential | {"privateKeyPassword": "nope"}, {}), box_deps)

    assert caught.value.permanent
    assert box.requests == []


async def test_developer_token_skips_the_token_exchange(box: HttpsPeer, box_deps: ActionDeps) -> None:
    box.reply("POST", UPLOAD, created("1"))

    await upload_box(box_ctx({"developerToken": "dev-token-abc"}, {"filename": "dev.txt"}), box_deps)

    assert box.requests_to("POST", TOKEN) == []
    assert box.requests_to("POST", UPLOAD)[0].headers["authorization"] == "Bearer dev-token-abc"


async def test_server_error_is_transient(box: HttpsPeer, box_deps: ActionDeps) -> None:
    box.reply("POST", UPLOAD, Reply(status=503, body={"code": "unavailable"}, headers={"Retry-After": "7"}))

    with pytest.raises(ActionError) as caught:
        await upload_box(box_ctx({"developerToken": "dev-token-abc"}, {}), box_deps)

    assert not caught.value.permanent
    assert caught.value.retry_after == 7


async def test_server_down_is_transient(deps: ActionDeps) -> None:
    down = at_base_url(deps, f"https://localhost:{unused_port()}", *BOX_URLS)

    with pytest.raises(ActionError) as caught:
        await upload_box(box_ctx({"developerToken": "t0k3n"}, {}), down)

    assert not caught.value.permanent


@pytest.mark.parametrize("filename", ["../escaped.txt", "sub/dir.txt", "/abs.txt"])
async def test_unsafe_filename_is_refused(box: HttpsPeer, box_deps: ActionDeps, filename: str) -> None:
    with pytest.raises(ActionError) as caught:
        await upload_box(box_ctx({"developerToken": "t0k3n"}, {"filename": filename}), box_deps)

    assert caught.value.permanent
    assert box.requests == []


async def test_loopback_is_refused_without_an_allowance(
    box: HttpsPeer, box_deps: ActionDeps, strict_deps: ActionDeps
) -> None:
    blocked = dataclasses.replace(strict_deps, settings=box_deps.settings)

    with pytest.raises(ActionError) as caught:
        await upload_box(box_ctx({"developerToken": "t0k3n"}, {}), blocked)

    assert caught.value.permanent
    assert box.requests == []
