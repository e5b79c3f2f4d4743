"""``GET /api/v4/workflows`` answered in plain ASGI when the request is plainly good.

The list is the API's hottest read (clients poll it) and, since it is kept encoded
(``workflows/lists.py``), routing, the dependency graph and the Request/Response objects were most of
its CPU. A GET of exactly that path with a Bearer token that verifies and carries the role is
answered here, with the same headers and bodies the route gives; anything else (no or bad token,
wrong role, another path or method) and any failure before the answer starts goes through the app
unchanged, so errors, their bodies and the OpenAPI document stay the route's
(``endpoints.list_workflows``, which answers the same way).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.deps import principal_of
from services.api.errors import Forbidden, Unauthorized
from services.api.state import ApiState
from services.api.workflows.etags import if_none_match_matches
from shared.auth import DEPARTMENT_ADMIN, Principal

PATH = "/api/v4/workflows"


class _Route:
    path = PATH  # what the metrics middleware labels requests by (scope["route"].path)


_ROUTE = _Route()


class FastWorkflowList:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        authorization = if_none_match = None
        for name, value in scope["headers"]:
            # The first of each, as Starlette's request.headers.get takes.
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"if-none-match" and if_none_match is None:
                if_none_match = value
        state: ApiState = scope["app"].state.api
        principal = _principal(state, authorization)
        if principal is None:
            await self.app(scope, receive, send)  # the route answers 401/403 as documented
            return
        try:
            listed = await state.lists.get(principal.department_id)
        except Exception:
            await self.app(scope, receive, send)  # nothing sent yet: the route fails as it would
            return
        scope["route"] = _ROUTE
        etag = f'"{listed.tag}"'.encode()
        if if_none_match is not None and if_none_match_matches(
            if_none_match.decode("latin-1"), etag.decode()
        ):
            await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", etag)]})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [  # in the order Starlette's Response writes them
            (b"etag", etag),
            (b"content-length", str(len(listed.body)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": listed.body})


def _principal(state: ApiState, authorization: bytes | None) -> Principal | None:
    try:
        header = authorization.decode("latin-1") if authorization is not None else None
        return principal_of(state, header, DEPARTMENT_ADMIN)
    except (Unauthorized, Forbidden):
        return None  # the route answers 401/403 with its documented body
