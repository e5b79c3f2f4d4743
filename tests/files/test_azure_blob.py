"""UploadFileAzureBlob against Azurite's Blob service on loopback, over HTTPS."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import AccountSasPermissions, BlobServiceClient, ResourceTypes, generate_account_sas

from services.executor.actions.base import ActionDeps, ActionError
from services.executor.registry import ACTIONS
from shared.enums import ActionType
from tests.files.conftest import make_ctx
from tests.peers.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuritePeer
from tests.peers.listener import Listener, unused_port
from tests.peers.tls import LocalCA

upload_azure_blob = ACTIONS[ActionType.UploadFileAzureBlob]

CONTENT = "Certification expiring: EMT-B for J. Rivera on 2024-07-01 ✓\n"


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory, local_ca: LocalCA) -> Iterator[AzuritePeer]:
    with AzuritePeer(tmp_path_factory.mktemp("azurite"), ca=local_ca) as peer:
        yield peer


@pytest.fixture
def container() -> str:
    return f"reports-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def service(azurite: AzuritePeer, local_ca: LocalCA) -> BlobServiceClient:
    """A synchronous client for reading back what the action stored."""
    return BlobServiceClient.from_connection_string(
        azurite.connection_string, connection_verify=str(local_ca.ca_bundle)
    )


def blob_ctx(credential: Mapping[str, Any], config: Mapping[str, Any] | None = None, content: str = CONTENT):
    return make_ctx(
        ActionType.UploadFileAzureBlob, content=content, config=config or {}, credential=credential
    )


def stored(service: BlobServiceClient, container: str) -> dict[str, bytes]:
    client = service.get_container_client(container)
    if not client.exists():
        return {}
    return {b.name: client.download_blob(b.name).readall() for b in client.list_blobs()}


async def test_connection_string_upload_creates_the_container(
    azurite: AzuritePeer, service: BlobServiceClient, container: str, deps: ActionDeps
) -> None:
    credential = {"connectionString": azurite.connection_string, "containerName": container}
    config = {"blobName": "calls/2024/0042.json", "contentType": "application/json"}

    result = await upload_azure_blob(blob_ctx(credential, config), deps)

    assert stored(service, container) == {"calls/2024/0042.json": CONTENT.encode()}
    properties = service.get_blob_client(container, "calls/2024/0042.json").get_blob_properties()
    assert properties.content_settings.content_type == "application/json"
    size = len(CONTENT.encode())
    assert (
        result.message
        == f"Azure Blob upload: {azurite.account_url}/{container}/calls/2024/0042.json ({size} bytes)"
    )


async def test_account_key_upload_with_default_dated_name(
    azurite: AzuritePeer, service: BlobServiceClient, container: str, deps: ActionDeps
) -> None:
    credential = {
        "accountName": ACCOUNT_NAME,
        "accountKey": ACCOUNT_KEY,
        "accountUrl": azurite.account_url,
        "containerName": container,
    }

    await upload_azure_blob(blob_ctx(credential), deps)

    [(name, body)] = stored(service, container).items()
    assert re.fullmatch(r"workflow/20\d\d/\d\d/\d\d/\d{6}\.txt", name)
    assert body == CONTENT.encode()


async def test_sas_token_upload_keeps_the_token_out_of_the_result(
    azurite: AzuritePeer, service: BlobServiceClient, container: str, deps: ActionDeps
) -> None:
    sas = generate_account_sas(
        ACCOUNT_NAME,
        ACCOUNT_KEY,
        resource_types=ResourceTypes(container=True, object=True),
        permission=AccountSasPermissions(read=True, write=True, create=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    credential = {
        "accountName": ACCOUNT_NAME,
        "sasToken": sas,
        "accountUrl": azurite.account_url,
        "containerName": container,
    }

    result = await upload_azure_blob(blob_ctx(credential, {"blobName": "sas.txt"}), deps)

    assert stored(service, container) == {"sas.txt": CONTENT.encode()}
    assert "sig=" not in result.message
    assert result.message.startswith(f"Azure Blob upload: {azurite.account_url}/{container}/sas.txt (")


async def test_existing_blob_is_overwritten(
    azurite: AzuritePeer, service: BlobServiceClient, container: str, deps: ActionDeps
) -> None:
    credential = {"connectionString": azurite.connection_string, "containerName": container}
    await upload_azure_blob(
        blob_ctx(credential, {"blobName": "log.txt"}, content="first, longer version"), deps
    )

    await upload_azure_blob(blob_ctx(credential, {"blobName": "log.txt"}, content="second"), deps)

    assert stored(service, container) == {"log.txt": b"second"}


async def test_wrong_account_key_is_permanent(
    azurite: AzuritePeer, service: BlobServiceClient, container: str, deps: ActionDeps
) -> None:
    wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
    credential = {
        "accountName": ACCOUNT_NAME,
        "accountKey": wrong_key,
        "accountUrl": azurite.account_url,
        "containerName": container,
    }

    with pytest.raises(ActionError) as caught:
        await upload_azure_blob(blob_ctx(credential, {"blobName": "x.txt"}), deps)

    assert caught.value.permanent
    assert wrong_key not in caught.value.message
    assert stored(service, container) == {}


async def test_blob_name_escape_is_refused(
    azurite: AzuritePeer, service: BlobServiceClient, container: str, deps: ActionDeps
) -> None:
    credential = {"connectionString": azurite.connection_string, "containerName": container}

    with pytest.raises(ActionError) as caught:
        await upload_azure_blob(blob_ctx(credential, {"blobName": "a/../../escaped.txt"}), deps)

    assert caught.value.permanent
    assert stored(service, container) == {}


async def test_server_down_is_transient(container: str, deps: ActionDeps) -> None:
    port = unused_port()
    credential = {
        "accountName": ACCOUNT_NAME,
        "accountKey": ACCOUNT_KEY,
        "accountUrl": f"https://localhost:{port}/{ACCOUNT_NAME}",
        "containerName": container,
    }

    with pytest.raises(ActionError) as caught:
        await upload_azure_blob(blob_ctx(credential), deps)

    assert not caught.value.permanent


async def test_loopback_is_refused_without_an_allowance(
    azurite: AzuritePeer, service: BlobServiceClient, container: str, strict_deps: ActionDeps
) -> None:
    credential = {"connectionString": azurite.connection_string, "containerName": container}

    with pytest.raises(ActionError) as caught:
        await upload_azure_blob(blob_ctx(credential), strict_deps)

    assert caught.value.permanent
    assert "egress" in caught.value.message.lower()
    assert stored(service, container) == {}


def test_missing_azurite_fails_with_install_instructions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tests.peers.azurite.AZURITE_BLOB", tmp_path / "missing" / "azurite-blob")

    with pytest.raises(RuntimeError, match=r"npm ci --prefix tools/azurite"):
        AzuritePeer(tmp_path).start()


async def test_an_environment_proxy_is_ignored(
    azurite: AzuritePeer,
    service: BlobServiceClient,
    container: str,
    deps: ActionDeps,
    environment_proxy: Listener,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await upload_azure_blob(
        blob_ctx({"connectionString": azurite.connection_string, "containerName": container}), deps
    )

    monkeypatch.undo()  # the reading client below honours the proxy variables
    assert environment_proxy.connections == 0
    assert list(stored(service, container).values()) == [CONTENT.encode()]
