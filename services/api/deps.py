"""Request dependencies as Annotated aliases: ``session: SessionDep``, ``admin: DepartmentAdminDep``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.errors import Forbidden, Unauthorized
from services.api.state import ApiState
from shared.auth import DEPARTMENT_ADMIN, SYSTEM_ADMIN, InvalidToken, Principal

_bearer = HTTPBearer(auto_error=False, description="JWT with sub, department_id, roles and exp claims")


async def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_principal(
    state: StateDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("A Bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    try:
        return state.verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise Unauthorized(
            f"The Bearer token is not accepted: {exc}", headers={"WWW-Authenticate": "Bearer"}
        ) from None


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(role: str) -> object:
    # async: FastAPI runs sync dependencies in a worker thread, a context switch on every request
    async def check(principal: PrincipalDep) -> Principal:
        if role not in principal.roles:
            raise Forbidden(f"This endpoint needs the {role} role")
        return principal

    return check


DepartmentAdminDep = Annotated[Principal, Depends(require_role(DEPARTMENT_ADMIN))]
SystemAdminDep = Annotated[Principal, Depends(require_role(SYSTEM_ADMIN))]
