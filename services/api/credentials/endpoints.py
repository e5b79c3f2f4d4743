from __future__ import annotations

from fastapi import APIRouter

from services.api.credentials.mapping import credential_result
from services.api.credentials.schemas import WorkflowCredentialInput, WorkflowCredentialResult
from services.api.credentials.service import credential_service
from services.api.deps import DepartmentAdminDep, SessionDep, StateDep
from services.api.paths import CredentialId
from services.api.schemas import DeletedResult, error_responses

router = APIRouter(prefix="/api/v4/workflows/credentials", tags=["Credentials"])


@router.get(
    "",
    response_model=list[WorkflowCredentialResult],
    summary="List credentials (secrets masked)",
    responses=error_responses(),
)
async def list_credentials(session: SessionDep, admin: DepartmentAdminDep) -> list[WorkflowCredentialResult]:
    return [credential_result(c) for c in await credential_service.list(session, admin)]


@router.get(
    "/{credential_id}",
    response_model=WorkflowCredentialResult,
    summary="Get a credential (secrets masked)",
    responses=error_responses(404),
)
async def get_credential(
    credential_id: CredentialId, session: SessionDep, admin: DepartmentAdminDep
) -> WorkflowCredentialResult:
    return credential_result(await credential_service.get(session, admin, credential_id))


@router.post(
    "",
    response_model=WorkflowCredentialResult,
    summary="Create a credential",
    description="Secret fields are encrypted at rest and never returned. Capped per plan (Free 2, Paid 20).",
    responses=error_responses(),
)
async def create_credential(
    body: WorkflowCredentialInput, session: SessionDep, state: StateDep, admin: DepartmentAdminDep
) -> WorkflowCredentialResult:
    return credential_result(await credential_service.create(session, admin, state.keyring, body))


@router.put(
    "/{credential_id}",
    response_model=WorkflowCredentialResult,
    summary="Update a credential",
    description='Secret fields omitted or sent as "••••••" keep their stored values. '
    "CredentialType cannot change.",
    responses=error_responses(404),
)
async def update_credential(
    credential_id: CredentialId,
    body: WorkflowCredentialInput,
    session: SessionDep,
    state: StateDep,
    admin: DepartmentAdminDep,
) -> WorkflowCredentialResult:
    return credential_result(
        await credential_service.update(session, admin, state.keyring, credential_id, body)
    )


@router.delete(
    "/{credential_id}",
    response_model=DeletedResult,
    summary="Delete a credential",
    description="Steps that use it fail on their next run with an error naming it.",
    responses=error_responses(404),
)
async def delete_credential(
    credential_id: CredentialId, session: SessionDep, admin: DepartmentAdminDep
) -> DeletedResult:
    await credential_service.delete(session, admin, credential_id)
    return DeletedResult(Id=credential_id)
