"""UploadFileAzureBlob: store the rendered content as a block blob (azure-storage-blob, aio).

* Authentication, first match wins: ``connectionString``; ``accountName`` + ``accountKey``;
  ``accountName`` + ``sasToken``. ``accountUrl`` replaces the public endpoint
  ``https://<account>.blob.core.windows.net`` (Azurite, sovereign clouds, private endpoints).
* The endpoint host is resolved and checked by the egress guard before any request, and the SDK's
  aiohttp session connects through the guard too (IP literals included), so it reaches only
  checked addresses. Redirects are not followed and environment proxies are ignored.
  TLS verification honours ``SSL_CERT_FILE``.
* The container is created when missing; an existing blob is overwritten.
* The result names the blob URL without its query string, so a SAS token never reaches the log.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient

from services.executor.actions.base import (
    ActionContext,
    ActionDeps,
    ActionError,
    ActionResult,
    permanent,
    transient,
)
from services.executor.actions.config_readers import required_text, secret_value, text_value
from services.executor.actions.http_requests import blocked_error
from services.executor.egress import EgressBlocked
from services.executor.egress.aiohttp_transport import GuardedConnector
from shared.actions.file_names import byte_count, encode_content, safe_object_key
from shared.actions.replies import find_cause, redact

WHAT = "Azure Blob Storage credential"
_SECRET_KEYS = ("connectionString", "accountKey", "sasToken")


def _service_client(credential: Any, transport: AioHttpTransport, timeout: float) -> BlobServiceClient:
    options: dict[str, Any] = {
        "transport": transport,
        "retry_total": 0,  # the engine retries with backoff; the SDK waits 15 s before its first retry
        "permit_redirects": False,  # Blob storage never redirects; a redirect could point anywhere
        "proxies": {},
    }
    connection_string = secret_value(credential, "connectionString", what=WHAT)
    if connection_string:
        try:
            return BlobServiceClient.from_connection_string(connection_string.strip(), **options)
        except ValueError as exc:
            raise permanent(f"{WHAT} has an invalid 'connectionString': {exc}") from None
    account_name = text_value(credential, "accountName", what=WHAT)
    if not account_name:
        raise permanent(f"{WHAT} needs a connectionString, or an accountName with an accountKey or sasToken")
    account_url = (
        text_value(credential, "accountUrl", what=WHAT) or f"https://{account_name}.blob.core.windows.net"
    )
    parts = urlsplit(account_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise permanent(
            f"{WHAT} has an invalid 'accountUrl' {account_url[:80]!r}: expected http(s)://host/..."
        )
    account_key = secret_value(credential, "accountKey", what=WHAT)
    sas_token = secret_value(credential, "sasToken", what=WHAT)
    secret: Any
    if account_key:
        secret = {"account_name": account_name, "account_key": account_key.strip()}
    elif sas_token:
        secret = sas_token.strip().lstrip("?")
    else:
        raise permanent(f"{WHAT} needs an accountKey or a sasToken with accountName {account_name!r}")
    return BlobServiceClient(account_url, credential=secret, **options)


def _public_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


async def upload_azure_blob(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    credential = ctx.credential
    if not credential:
        raise permanent("Azure Blob upload needs an Azure Blob Storage credential")
    container = required_text(credential, "containerName", what=WHAT)
    blob_name = safe_object_key(text_value(ctx.config, "blobName", what="Action config"), what="Blob name")
    content_type = (
        text_value(ctx.config, "contentType", what="Action config", default="text/plain") or "text/plain"
    )
    data = encode_content(ctx.content)
    secrets = [str(credential.get(k) or "") for k in _SECRET_KEYS]
    timeout = deps.settings.upload_timeout_s

    # trust_env=False: HTTP(S)_PROXY would send the request to an address the guard never checked.
    session = aiohttp.ClientSession(connector=GuardedConnector(deps.egress), trust_env=False)
    transport = AioHttpTransport(
        session=session,
        session_owner=False,
        connection_timeout=min(30.0, timeout),
        read_timeout=timeout,
        # The transport owns TLS settings; a bundle path makes it build a hostname-checking context.
        connection_verify=os.environ.get("SSL_CERT_FILE") or True,
        use_env_settings=False,
    )
    blob_url = f"{container}/{blob_name}"
    try:
        service = _service_client(credential, transport, timeout)
        endpoint = urlsplit(service.url)
        host = endpoint.hostname or ""
        try:
            await deps.egress.resolve(host, endpoint.port or (443 if endpoint.scheme == "https" else 80))
        except EgressBlocked as exc:
            raise blocked_error(exc, f"Azure Blob endpoint {host}") from None
        async with asyncio.timeout(timeout):
            async with service:
                container_client = service.get_container_client(container)
                try:
                    await container_client.create_container()
                except ResourceExistsError:
                    pass
                blob = container_client.get_blob_client(blob_name)
                blob_url = _public_url(blob.url)
                await blob.upload_blob(
                    data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
                )
    except BaseException as exc:
        error = _classify(exc, blob_url=blob_url)
        if error is None:
            raise
        raise ActionError(
            redact(error.message, secrets),
            permanent=error.permanent,
            retry_after=error.retry_after,
            result=error.result,
        ) from None
    finally:
        await session.close()
    return ActionResult(f"Azure Blob upload: {blob_url} ({byte_count(len(data))})")


def _classify(exc: BaseException, *, blob_url: str) -> ActionError | None:
    if isinstance(exc, ActionError):
        return exc
    blocked = find_cause(exc, EgressBlocked)
    if blocked is not None:
        return blocked_error(blocked, "Azure Blob endpoint")
    if find_cause(exc, ssl.SSLCertVerificationError) is not None:
        return permanent(
            f"Azure Blob upload to {blob_url}: the endpoint's TLS certificate could not be verified"
        )
    if isinstance(exc, ClientAuthenticationError):
        return permanent(
            f"Azure Blob upload to {blob_url} was refused: authentication failed ({_reason(exc)})"
        )
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        message = f"Azure Blob upload to {blob_url} failed: HTTP {status} {_reason(exc)}".rstrip()
        result = f"HTTP {status}" if status else None
        if status in (408, 429) or status >= 500 or status == 0:
            return transient(message, result=result)
        return permanent(message, result=result)
    if isinstance(
        exc, ServiceRequestError | ServiceResponseError | TimeoutError | OSError | aiohttp.ClientError
    ):
        return transient(
            f"Azure Blob upload to {blob_url} failed: could not reach the endpoint ({type(exc).__name__})"
        )
    return None


def _reason(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    reason = exc.reason or ""
    return f"{code}: {reason}" if code else reason
