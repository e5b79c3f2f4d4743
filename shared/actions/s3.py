"""UploadFileS3: config model, rules and accepted credential (performed by the executor's S3 module)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from shared.actions.config_fields import as_text, is_template, media_type, object_key, one_of, pattern
from shared.actions.spec import ActionConfig, ActionSpec
from shared.credential_fields import (
    CredentialData,
    EndpointUrl,
    Line,
    Token,
    _secret,
    matching,
)
from shared.enums import ActionType, CredentialType

# --- credentials ------------------------------------------------------------------------------------


_BUCKET = re.compile(r"^(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class AwsS3Credential(CredentialData):
    """Amazon S3 or an S3-compatible store (type 4)."""

    access_key_id: Token
    secret_access_key: Line = _secret(required=True)
    session_token: Line | None = _secret()
    region: Annotated[Token, matching(r"^[a-z0-9-]{2,64}$", "must be a region name like us-east-1")] = (
        "us-east-1"
    )
    bucket_name: Annotated[
        str,
        matching(
            _BUCKET.pattern,
            "must be a bucket name: 3-63 lower-case letters, digits, dots and hyphens, starting and ending "
            "with a letter or digit",
        ),
    ]
    endpoint_url: EndpointUrl | None = None


# --- config -----------------------------------------------------------------------------------------


def utc_object_key(now: datetime) -> str:
    return now.strftime("workflow/%Y/%m/%d/%H%M%S.txt")


ObjectKey = Annotated[str, as_text(object_key)]


class UploadS3Config(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"s3Key": utc_object_key}

    s3_key: ObjectKey | None = None
    content_type: Annotated[str, as_text(media_type)] = "text/plain"
    server_side_encryption: Annotated[str, as_text(one_of("AES256", "aws:kms"))] | None = None
    kms_key_id: (
        Annotated[str, as_text(pattern(r"^\S{1,2048}$", "must be a KMS key id, ARN or alias"))] | None
    ) = None

    @classmethod
    def rules(cls, config: Mapping[str, Any], *, has_credential: bool | None) -> list[tuple[str, str]]:
        if "kmsKeyId" in config:
            sse = config.get("serverSideEncryption")
            if sse is None or (sse != "aws:kms" and not is_template(sse)):
                return [("kmsKeyId", 'needs serverSideEncryption "aws:kms"')]
        return []


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(ActionType.UploadFileS3, UploadS3Config, frozenset({CredentialType.AwsS3}))
]
