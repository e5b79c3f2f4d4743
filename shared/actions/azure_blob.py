"""UploadFileAzureBlob: config model and accepted credential (performed by the executor's Azure module)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from shared.actions.config_fields import as_text, media_type
from shared.actions.s3 import ObjectKey, utc_object_key
from shared.actions.spec import ActionConfig, ActionSpec
from shared.enums import ActionType, CredentialType


class UploadAzureBlobConfig(ActionConfig):
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {"blobName": utc_object_key}

    blob_name: ObjectKey | None = None
    content_type: Annotated[str, as_text(media_type)] = "text/plain"


SPECS: list[ActionSpec[Any, Any]] = [
    ActionSpec(
        ActionType.UploadFileAzureBlob, UploadAzureBlobConfig, frozenset({CredentialType.AzureBlobStorage})
    )
]
