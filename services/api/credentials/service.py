"""Credentials: one canonical schema per type; secret fields encrypted, bound to the department and row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.credentials.repository import CredentialRepository
from services.api.credentials.schemas import WorkflowCredentialInput
from services.api.department.service import lock_department
from services.api.errors import NotFound, PlanLimitReached, ValidationFailed
from shared.auth import Principal
from shared.credential_types import (
    CredentialValidationError,
    merge_update,
    split_secrets,
    validate_credential_data,
)
from shared.crypto import DecryptionError, Keyring, credential_aad
from shared.enums import CredentialType
from shared.models import WorkflowCredential
from shared.plans import limits_for


def _invalid(exc: CredentialValidationError) -> ValidationFailed:
    summary = "; ".join(f"{field}: {message}" for field, message in exc.fields[:5])
    return ValidationFailed(f"The credential data is invalid: {summary}", fields=exc.fields)


def _seal(
    keyring: Keyring, credential: WorkflowCredential, ctype: CredentialType, data: dict[str, Any]
) -> None:
    """Store canonical ``data``: public fields in clear, secret fields encrypted for this row."""
    public, secret = split_secrets(ctype, data)
    credential.public_data = public
    credential.secret_keys = sorted(secret)
    credential.encrypted_data = keyring.encrypt_json(
        credential.department_id, secret, aad=credential_aad(credential.workflow_credential_id)
    )


class CredentialService:
    async def list(self, session: AsyncSession, principal: Principal) -> Sequence[WorkflowCredential]:
        return await CredentialRepository(session).list(principal.department_id)

    async def get(
        self, session: AsyncSession, principal: Principal, credential_id: int
    ) -> WorkflowCredential:
        credential = await CredentialRepository(session).get(principal.department_id, credential_id)
        if credential is None:
            raise NotFound(f"Credential {credential_id} was not found")
        return credential

    async def create(
        self, session: AsyncSession, principal: Principal, keyring: Keyring, data: WorkflowCredentialInput
    ) -> WorkflowCredential:
        ctype = CredentialType(data.CredentialType)
        try:
            canonical = validate_credential_data(ctype, data.Data)
        except CredentialValidationError as exc:
            raise _invalid(exc) from None
        repo = CredentialRepository(session)
        plan = await lock_department(session, principal.department_id)
        cap = limits_for(plan).credentials
        if await repo.count(principal.department_id) >= cap:
            raise PlanLimitReached(
                f"Credential limit reached: the {plan.value} plan allows {cap} credentials per department"
            )
        # The ciphertext is bound to the row id, so the row is inserted first and sealed once it has one.
        credential = await repo.add(
            WorkflowCredential(
                department_id=principal.department_id,
                name=data.Name,
                credential_type=int(ctype),
                public_data={},
                secret_keys=[],
                encrypted_data="",
            )
        )
        _seal(keyring, credential, ctype, canonical)
        await session.flush()
        await session.refresh(credential, ["created_on", "updated_on"])
        return credential

    async def update(
        self,
        session: AsyncSession,
        principal: Principal,
        keyring: Keyring,
        credential_id: int,
        data: WorkflowCredentialInput,
    ) -> WorkflowCredential:
        repo = CredentialRepository(session)
        credential = await repo.get(principal.department_id, credential_id, for_update=True)
        if credential is None:
            raise NotFound(f"Credential {credential_id} was not found")
        ctype = CredentialType(credential.credential_type)
        if data.CredentialType != credential.credential_type:
            # Kept secrets belong to the old type, and steps were checked against it: create a new one.
            raise ValidationFailed(
                f"CredentialType cannot be changed (this credential is {ctype.name}); create a new credential",
                fields=[("CredentialType", f"must stay {int(ctype)} ({ctype.name})")],
            )
        try:
            secret = keyring.decrypt_json(
                credential.department_id, credential.encrypted_data, aad=credential_aad(credential_id)
            )
        except DecryptionError:
            secret = {}  # unreadable (e.g. master key lost): the update must then supply every secret
        try:
            merged = merge_update(ctype, {**credential.public_data, **secret}, data.Data)
        except CredentialValidationError as exc:
            raise _invalid(exc) from None
        credential.name = data.Name
        credential.updated_on = func.now()
        _seal(keyring, credential, ctype, merged)
        await session.flush()
        await session.refresh(credential, ["created_on", "updated_on"])
        return credential

    async def delete(self, session: AsyncSession, principal: Principal, credential_id: int) -> None:
        # Steps keep the id: they then fail naming the missing credential (docs/api-behaviour.md, Validation).
        if not await CredentialRepository(session).delete(principal.department_id, credential_id):
            raise NotFound(f"Credential {credential_id} was not found")


credential_service = CredentialService()
