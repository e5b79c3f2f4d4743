"""UploadFileS3 against moto's S3 server on loopback, over TLS, with IAM authentication enforced."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from services.executor.actions.base import ActionDeps, ActionError
from services.executor.egress import EgressGuard
from services.executor.registry import ACTIONS
from shared.enums import ActionType
from tests.files.conftest import LOOPBACK, make_ctx
from tests.peers.listener import Listener, unused_port
from tests.peers.s3_server import S3Peer
from tests.peers.tls import LocalCA

upload_s3 = ACTIONS[ActionType.UploadFileS3]

BUCKET = "station-reports"
CONTENT = "Shift 2024-06-01 A: 14 personnel on duty — Engine 3 ✓\n"


@pytest.fixture(scope="module")
def s3(local_ca: LocalCA) -> Iterator[S3Peer]:
    with S3Peer(local_ca, hostnames=("localhost", "127.0.0.1", "minio")) as peer:
        yield peer


@pytest.fixture
def iam_keys(s3: S3Peer) -> Iterator[dict[str, str]]:
    """A fresh bucket and an IAM user allowed to use S3; every later request must be signed by it."""
    s3.reset()
    s3.require_auth(False)
    s3.client().create_bucket(Bucket=BUCKET)
    iam = s3.client("iam")
    iam.create_user(UserName="workflows")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="workflows", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="workflows")["AccessKey"]
    s3.require_auth(True)
    yield {"accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"]}
    s3.require_auth(False)


@pytest.fixture
def bucket(s3: S3Peer, iam_keys: dict[str, str]) -> Any:
    return s3.bucket(BUCKET, iam_keys["accessKeyId"], iam_keys["secretAccessKey"])


def s3_ctx(s3: S3Peer, keys: dict[str, str], config: Mapping[str, Any], **credential: object):
    return make_ctx(
        ActionType.UploadFileS3,
        content=CONTENT,
        config=config,
        credential=s3.credential(BUCKET, **keys | credential),
    )


def keys_in(bucket) -> list[str]:
    return [o.key for o in bucket.objects.all()]


async def test_uploads_the_object_with_its_content_type(
    s3: S3Peer, iam_keys, bucket, deps: ActionDeps
) -> None:
    config = {"s3Key": "calls/2024/0042.json", "contentType": "application/json"}

    result = await upload_s3(s3_ctx(s3, iam_keys, config), deps)

    stored = bucket.Object("calls/2024/0042.json").get()
    assert stored["Body"].read() == CONTENT.encode()
    assert stored["ContentType"] == "application/json"
    assert result.message == f"S3 upload: s3://{BUCKET}/calls/2024/0042.json ({len(CONTENT.encode())} bytes)"


async def test_default_key_is_dated_in_utc(s3: S3Peer, iam_keys, bucket, deps: ActionDeps) -> None:
    await upload_s3(s3_ctx(s3, iam_keys, {}), deps)

    [key] = keys_in(bucket)
    assert re.fullmatch(r"workflow/20\d\d/\d\d/\d\d/\d{6}\.txt", key)
    assert bucket.Object(key).get()["ContentType"] == "text/plain"


async def test_server_side_encryption_is_requested(s3: S3Peer, iam_keys, bucket, deps: ActionDeps) -> None:
    await upload_s3(s3_ctx(s3, iam_keys, {"s3Key": "sse.txt", "serverSideEncryption": "AES256"}), deps)

    assert bucket.Object("sse.txt").get()["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize(
    "override", [{"secretAccessKey": "wrong-secret"}, {"accessKeyId": "AKIAUNKNOWN000000000"}]
)
async def test_bad_keys_are_permanent(s3: S3Peer, iam_keys, bucket, deps: ActionDeps, override) -> None:
    with pytest.raises(ActionError) as caught:
        await upload_s3(s3_ctx(s3, iam_keys | override, {"s3Key": "x.txt"}), deps)

    assert caught.value.permanent
    assert re.search(r"SignatureDoesNotMatch|InvalidAccessKeyId", caught.value.message)
    assert "wrong-secret" not in caught.value.message
    assert keys_in(bucket) == []


async def test_missing_bucket_is_permanent(s3: S3Peer, iam_keys, deps: ActionDeps) -> None:
    ctx = s3_ctx(s3, iam_keys, {"s3Key": "x.txt"}, bucketName="no-such-bucket")

    with pytest.raises(ActionError) as caught:
        await upload_s3(ctx, deps)

    assert caught.value.permanent
    assert "NoSuchBucket" in caught.value.message


async def test_path_escape_in_key_is_refused(s3: S3Peer, iam_keys, bucket, deps: ActionDeps) -> None:
    with pytest.raises(ActionError) as caught:
        await upload_s3(s3_ctx(s3, iam_keys, {"s3Key": "reports/../../escaped.txt"}), deps)

    assert caught.value.permanent
    assert keys_in(bucket) == []


async def test_server_down_is_transient(iam_keys, deps: ActionDeps) -> None:
    port = unused_port()
    credential = iam_keys | {"bucketName": BUCKET, "endpointUrl": f"https://localhost:{port}"}
    ctx = make_ctx(ActionType.UploadFileS3, content=CONTENT, config={}, credential=credential)

    with pytest.raises(ActionError) as caught:
        await upload_s3(ctx, deps)

    assert not caught.value.permanent


async def test_loopback_endpoint_is_refused_without_an_allowance(
    s3: S3Peer, iam_keys, bucket, strict_deps: ActionDeps
) -> None:
    with pytest.raises(ActionError) as caught:
        await upload_s3(s3_ctx(s3, iam_keys, {"s3Key": "x.txt"}), strict_deps)

    assert caught.value.permanent
    assert "egress" in caught.value.message.lower()
    assert keys_in(bucket) == []


async def test_untrusted_certificate_is_refused(iam_keys, local_ca: LocalCA, deps: ActionDeps) -> None:
    with S3Peer(local_ca, hostnames=("s3.example.org",)) as other:
        ctx = make_ctx(
            ActionType.UploadFileS3,
            content=CONTENT,
            config={},
            credential=other.credential(BUCKET, **iam_keys),
        )

        with pytest.raises(ActionError) as caught:
            await upload_s3(ctx, deps)

    assert caught.value.permanent
    assert "certificate" in caught.value.message


async def test_connections_resolve_through_the_egress_guard(
    s3: S3Peer, iam_keys, bucket, deps: ActionDeps
) -> None:
    # "minio" (a compose-style service name) exists only in the guard's overrides, not in DNS.
    egress = EgressGuard(allow_cidrs=LOOPBACK, host_overrides={"minio": "127.0.0.1"})
    endpoint = f"https://minio:{s3.port}"

    await upload_s3(
        s3_ctx(s3, iam_keys, {"s3Key": "pinned.txt"}, endpointUrl=endpoint),
        dataclasses.replace(deps, egress=egress),
    )

    assert bucket.Object("pinned.txt").get()["Body"].read() == CONTENT.encode()


async def test_an_environment_proxy_is_ignored(
    s3: S3Peer, iam_keys, bucket, deps: ActionDeps, environment_proxy: Listener
) -> None:
    """botocore reads HTTP(S)_PROXY: the request would go to an address the guard never checked."""
    await upload_s3(s3_ctx(s3, iam_keys, {"s3Key": "direct.txt"}), deps)

    assert environment_proxy.connections == 0
    assert bucket.Object("direct.txt").get()["Body"].read() == CONTENT.encode()
