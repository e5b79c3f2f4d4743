"""ORM rows → API results: secrets are never read here, only the names of those that are set."""

from __future__ import annotations

from services.api.credentials.schemas import WorkflowCredentialResult
from shared.credential_types import masked
from shared.enums import CredentialType
from shared.models import WorkflowCredential


def credential_result(credential: WorkflowCredential) -> WorkflowCredentialResult:
    ctype = CredentialType(credential.credential_type)
    return WorkflowCredentialResult(
        WorkflowCredentialId=credential.workflow_credential_id,
        Name=credential.name,
        CredentialType=int(ctype),
        Data=masked(ctype, credential.public_data, credential.secret_keys),
        CreatedOn=credential.created_on,
        UpdatedOn=credential.updated_on,
    )
