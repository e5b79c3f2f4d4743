"""UploadFileS3: put the rendered content as an object in an S3 bucket (aioboto3).

* Bucket, region and keys come from the credential; ``endpointUrl`` points at an S3-compatible
  store (MinIO, Ceph, a regional edge). Its host is resolved and checked by the egress guard
  before the client is built, so a refused endpoint fails before any request.
* Every connection the client makes, to AWS or to the custom endpoint, is pinned to an address
  the egress guard checked: aiobotocore's aiohttp connector asks the guard (``resolve``) for every
  host, IP literals included, instead of DNS, so there is no second, unchecked lookup. Redirects
  are not followed and proxies are never used (not even ``HTTP(S)_PROXY``). TLS is verified against
  the host name with ``SSL_CERT_FILE`` when it is set (the operator's trust store), else certifi.
* ``endpointUrl`` may be ``http://`` for on-premises stores; requests are still SigV4-signed, so
  the secret key never travels, but the content does in clear text: that is the user's choice.
* Authentication and bucket errors are permanent; throttling, 5xx and network failures transient.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from typing import Any
from urllib.parse import urlsplit

import aioboto3
import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import get_cert_path
from botocore.utils import S3RegionRedirectorv2

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
from services.executor.egress import EgressBlocked, EgressGuard
from services.executor.egress.aiohttp_transport import GuardedConnector, NoRedirectSession
from shared.actions.file_names import byte_count, encode_content, safe_object_key
from shared.actions.replies import find_cause

WHAT = "AWS S3 credential"
_SSE_VALUES = ("AES256", "aws:kms", "aws:kms:dsse")
_PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "InvalidBucketName",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
        "InvalidArgument",
        "InvalidRequest",
        "KMS.NotFoundException",
        "KMS.DisabledException",
        "AccountProblem",
        "EntityTooLarge",
        "InvalidObjectState",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
    }
)


class _GuardedSession(AIOHTTPSession):  # type: ignore[misc]  # aiobotocore is untyped
    """aiobotocore's aiohttp session, made safe for user-chosen endpoints.

    * Every connection, IP literals included, goes through the egress guard (``GuardedConnector``).
    * Redirects are not followed: botocore gets the 3xx as an error response.
    * A context that checks the certificate's host name: aiobotocore starts from urllib3's context,
      which leaves ``check_hostname`` off because urllib3 matches names itself; aiohttp does not,
      so any certificate from a trusted CA would pass.
    """

    def __init__(self, *args: Any, egress: EgressGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._egress = egress

    def _create_connector(self, proxy_url: str | None) -> aiohttp.TCPConnector:
        if proxy_url:  # proxies={} on the config: never reached
            raise RuntimeError("S3 uploads do not use proxies")
        context: ssl.SSLContext | bool = False
        if self._verify:  # as aiobotocore does: the default context plus botocore's bundle
            context = self._get_ssl_context()
            bundle = get_cert_path(self._verify)
            if bundle:
                context.load_verify_locations(bundle)
        return GuardedConnector(
            self._egress, limit=self._max_pool_connections, ssl=context, **self._connector_args
        )

    async def _get_session(self, proxy_url: str | None) -> NoRedirectSession:
        return NoRedirectSession(await super()._get_session(proxy_url))

    def _get_ssl_context(self) -> ssl.SSLContext:
        # A fresh context each time: botocore loads its CA bundle into it.
        context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def _endpoint(credential: Any) -> tuple[str | None, str | None, int]:
    """The custom endpoint URL (or None) with its host and port; only http(s) URLs with a host."""
    url = text_value(credential, "endpointUrl", what=WHAT)
    if url is None:
        return None, None, 0
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise permanent(f"{WHAT} has an invalid 'endpointUrl' {url[:80]!r}: expected http(s)://host[:port]")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise permanent(f"{WHAT} has an invalid 'endpointUrl' port: {url[:80]!r}") from None
    return url, parts.hostname, port


def _drop_region_redirects(client: Any) -> None:
    """A custom store has no regions to be redirected between, and a hostile one answering 301 to
    every request sends botocore's region redirector into a loop of HEAD requests."""
    emitter = client.meta.events
    for handler in list(emitter._emitter._handlers.prefix_search("needs-retry.s3")):
        if isinstance(getattr(handler, "__self__", None), S3RegionRedirectorv2):
            emitter.unregister("needs-retry.s3", handler)


def _verify() -> str | bool:
    # botocore loads certifi unless given a bundle; SSL_CERT_FILE is the operator's trust store.
    return os.environ.get("SSL_CERT_FILE") or True


async def upload_s3(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
    credential = ctx.credential
    if not credential:
        raise permanent("S3 upload needs an AWS S3 credential")
    access_key = required_text(credential, "accessKeyId", what=WHAT)
    secret_key = secret_value(credential, "secretAccessKey", what=WHAT, required=True)
    session_token = secret_value(credential, "sessionToken", what=WHAT)
    region = text_value(credential, "region", what=WHAT, default="us-east-1") or "us-east-1"
    bucket = required_text(credential, "bucketName", what=WHAT)
    endpoint_url, endpoint_host, endpoint_port = _endpoint(credential)

    key = safe_object_key(text_value(ctx.config, "s3Key", what="Action config"), what="S3 key")
    content_type = (
        text_value(ctx.config, "contentType", what="Action config", default="text/plain") or "text/plain"
    )
    extra: dict[str, Any] = {}
    sse = text_value(ctx.config, "serverSideEncryption", what="Action config")
    if sse is not None:
        if sse not in _SSE_VALUES:
            raise permanent(
                f"Action config has an invalid 'serverSideEncryption' {sse!r} (use AES256 or aws:kms)"
            )
        extra["ServerSideEncryption"] = sse
    kms_key_id = text_value(ctx.config, "kmsKeyId", what="Action config")
    if kms_key_id is not None:
        if not sse or not sse.startswith("aws:kms"):
            raise permanent("Action config sets 'kmsKeyId' without serverSideEncryption \"aws:kms\"")
        extra["SSEKMSKeyId"] = kms_key_id
    data = encode_content(ctx.content)
    location = f"s3://{bucket}/{key}"

    if endpoint_host is not None:
        try:
            await deps.egress.resolve(endpoint_host, endpoint_port)
        except EgressBlocked as exc:
            raise blocked_error(exc, f"S3 endpoint {endpoint_host}") from None

    timeout = deps.settings.upload_timeout_s
    config = AioConfig(
        connect_timeout=min(30.0, timeout),
        read_timeout=timeout,
        retries={"total_max_attempts": 2, "mode": "standard"},
        # Custom stores rarely have wildcard DNS/certificates for virtual-hosted buckets.
        s3={"addressing_style": "path"} if endpoint_url else None,
        proxies={},  # not None: botocore would read HTTP(S)_PROXY, an address the guard never sees
        http_session_cls=functools.partial(_GuardedSession, egress=deps.egress),
    )
    session = aioboto3.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        region_name=region,
    )
    try:
        async with asyncio.timeout(timeout):
            async with session.client("s3", endpoint_url=endpoint_url, config=config, verify=_verify()) as s3:
                if endpoint_url:
                    _drop_region_redirects(s3)
                await s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, **extra)
    except BaseException as exc:
        error = _classify(exc, location=location, secrets=[secret_key or "", session_token or ""])
        if error is None:
            raise
        raise error from None
    return ActionResult(f"S3 upload: {location} ({byte_count(len(data))})")


def _classify(exc: BaseException, *, location: str, secrets: list[str]) -> ActionError | None:
    if isinstance(exc, ActionError):
        return exc
    blocked = find_cause(exc, EgressBlocked)
    if blocked is not None:
        return blocked_error(blocked, "S3 endpoint")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        detail = str(error.get("Message", "") or "")[:300]
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"S3 upload to {location} failed: {code}" + (f" ({detail})" if detail else "")
        for secret in secrets:
            if secret:
                message = message.replace(secret, "••••••")
        if code in _TRANSIENT_CODES or status in (408, 429) or status >= 500:
            return transient(message, result=f"HTTP {status}" if status else None)
        if code in _PERMANENT_CODES or 400 <= status < 500:
            return permanent(message, result=f"HTTP {status}" if status else None)
        return transient(message)
    if isinstance(exc, NoCredentialsError | ParamValidationError):
        return permanent(f"S3 upload to {location} is misconfigured: {exc}")
    if find_cause(exc, ssl.SSLCertVerificationError) is not None or isinstance(exc, SSLError):
        return permanent(
            f"S3 upload to {location}: the endpoint's TLS certificate could not be verified ({exc})"
        )
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError | TimeoutError):
        return transient(f"S3 upload to {location} timed out")
    if isinstance(exc, EndpointConnectionError | ConnectionClosedError):
        return transient(f"S3 upload to {location} failed: could not connect ({exc})")
    if isinstance(exc, BotoCoreError | OSError):
        return transient(f"S3 upload to {location} failed: {type(exc).__name__}: {exc}")
    return None
