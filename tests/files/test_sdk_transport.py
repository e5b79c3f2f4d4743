"""The S3 and Azure SDK transports reach only what the egress guard allows.

An allowed endpoint (127.0.0.1 here) that answers 307 or 303 with ``Location: http://<internal IP>/``
must not make the executor send the rendered body (or a GET) there: aiohttp skips resolvers for IP
literals and both SDKs followed redirects. The "internal" address is a second listener on
127.0.0.2, outside the guard's allowance; it must receive nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from services.executor.actions.base import ActionDeps, ActionError
from services.executor.egress import EgressBlocked, EgressGuard
from services.executor.egress.aiohttp_transport import GuardedConnector
from services.executor.registry import ACTIONS
from shared.enums import ActionType
from tests.files.conftest import make_ctx
from tests.peers.azurite import ACCOUNT_KEY, ACCOUNT_NAME
from tests.peers.listener import INTERNAL, Listener

upload_azure_blob = ACTIONS[ActionType.UploadFileAzureBlob]
upload_s3 = ACTIONS[ActionType.UploadFileS3]

ALLOWED = "127.0.0.1"
SECRET_BODY = "Patient: J. Doe, DOB 1970-01-01"


@pytest.fixture
async def internal() -> AsyncIterator[Listener]:
    async with Listener() as listener:
        yield listener


async def redirecting_endpoint(status: int, target: str) -> tuple[web.AppRunner, int]:
    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers={"Location": target})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, ALLOWED, 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.fixture
def guarded(deps: ActionDeps) -> ActionDeps:
    return dataclasses.replace(deps, egress=EgressGuard(allow_cidrs=[f"{ALLOWED}/32"]))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_s3_does_not_follow_a_redirect_to_an_internal_ip(
    status: int, internal: Listener, guarded: ActionDeps
) -> None:
    runner, port = await redirecting_endpoint(status, f"http://{INTERNAL}:{internal.port}/steal")
    try:
        credential = {
            "accessKeyId": "AKIAEXAMPLE",
            "secretAccessKey": "s3-secret-key",
            "bucketName": "reports",
            "endpointUrl": f"http://{ALLOWED}:{port}",
        }
        ctx = make_ctx(
            ActionType.UploadFileS3, content=SECRET_BODY, config={"s3Key": "a.txt"}, credential=credential
        )
        with pytest.raises(ActionError):
            await upload_s3(ctx, guarded)
    finally:
        await runner.cleanup()
    assert internal.connections == 0, internal.received[:200]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_azure_does_not_follow_a_redirect_to_an_internal_ip(
    status: int, internal: Listener, guarded: ActionDeps
) -> None:
    runner, port = await redirecting_endpoint(status, f"http://{INTERNAL}:{internal.port}/steal")
    try:
        credential = {
            "accountName": ACCOUNT_NAME,
            "accountKey": ACCOUNT_KEY,
            "accountUrl": f"http://{ALLOWED}:{port}/{ACCOUNT_NAME}",
            "containerName": "reports",
        }
        ctx = make_ctx(
            ActionType.UploadFileAzureBlob,
            content=SECRET_BODY,
            config={"blobName": "a.txt"},
            credential=credential,
        )
        with pytest.raises(ActionError):
            await upload_azure_blob(ctx, guarded)
    finally:
        await runner.cleanup()
    assert internal.connections == 0, internal.received[:200]


@pytest.mark.parametrize("host", [INTERNAL, "2130706434", "[::ffff:127.0.0.2]"])
async def test_the_connector_checks_ip_literals(host: str, internal: Listener) -> None:
    """The second defence: a request to an IP literal is refused by the guard, not connected."""
    connector = GuardedConnector(EgressGuard(allow_cidrs=[f"{ALLOWED}/32"]))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises((EgressBlocked, aiohttp.ClientError)) as caught:
            await session.get(f"http://{host}:{internal.port}/")
    if isinstance(caught.value, aiohttp.ClientError):  # aiohttp refuses the legacy form itself
        assert host == "2130706434"
    assert internal.connections == 0
