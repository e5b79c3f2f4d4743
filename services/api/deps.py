"""Request dependencies as Annotated aliases: ``session: SessionDep``, ``admin: DepartmentAdminDep``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.errors import Forbidden, Unauthorized
from services.api.state import ApiState
from shared.auth import DEPARTMENT_ADMIN, SYSTEM_ADMIN, InvalidToken, Principal
from shared.db.engine import session_scope


def request_state(request: Request) -> ApiState:
    """The lifespan's ApiState, without a dependency layer (hot endpoints take ``request: Request``)."""
    state: ApiState = request.app.state.api
    return state


async def get_state(request: Request) -> ApiState:
    return request_state(request)


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with session_scope(request_state(request).sessionmaker) as session:
        yield session


# scope="function": the commit happens before the response is sent (a request-scoped dependency exits
# after it), so a client that got its answer can rely on the change being committed, e.g. produce an
# event for the workflow it just saved (read-your-writes, docs/reliability.md).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


class BearerPrincipal(HTTPBearer):
    """The token's principal, if it has ``role``: 401 without a valid token, then 403 without the role.

    The security scheme itself (documented in OpenAPI as HTTPBearer), so that an endpoint resolves one
    dependency rather than a chain: FastAPI's work per dependency is paid on every request. async,
    because FastAPI runs sync dependencies in a worker thread.
    """

    def __init__(self, role: str) -> None:
        super().__init__(
            scheme_name="HTTPBearer",
            description="JWT with sub, department_id, roles and exp claims",
            auto_error=False,
        )
        self.role = role

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        return principal_of(request_state(request), request.headers.get("Authorization"), self.role)


def principal_of(state: ApiState, authorization: str | None, role: str) -> Principal:
    """The principal of an ``Authorization`` header value, if it has ``role``: Unauthorized without a
    valid Bearer token, then Forbidden without the role. (The workflow list's fast path asks the same.)"""
    scheme, credentials = get_authorization_scheme_param(authorization)  # as HTTPBearer reads it
    if scheme.lower() != "bearer" or not credentials:
        raise Unauthorized("A Bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    try:
        principal = state.verifier.verify(credentials)
    except InvalidToken as exc:
        raise Unauthorized(
            f"The Bearer token is not accepted: {exc}", headers={"WWW-Authenticate": "Bearer"}
        ) from None
    if role not in principal.roles:
        raise Forbidden(f"This endpoint needs the {role} role")
    return principal


DepartmentAdminDep = Annotated[Principal, Depends(BearerPrincipal(DEPARTMENT_ADMIN))]
SystemAdminDep = Annotated[Principal, Depends(BearerPrincipal(SYSTEM_ADMIN))]
