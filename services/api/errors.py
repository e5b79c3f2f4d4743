"""One error shape everywhere: {"Error": "<MachineCode>", "Message": "...", "Fields": [...]}.

Invalid input is always 400 (never 422), as the spec and docs/api-behaviour.md (JSON) require.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class AppError(Exception):
    """An error answered as ErrorResult: ``status_code``, and ``code`` (the class name unless set)."""

    status_code = 400
    code = "BadRequest"

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.code = cls.__dict__.get("code", cls.__name__)

    def __init__(
        self,
        message: str,
        *,
        fields: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        self.headers = headers


class BadRequest(AppError):
    pass


class ValidationFailed(AppError):
    code = "ValidationError"


class PlanLimitReached(AppError):
    pass


class RunLimitReached(AppError):
    """The department's daily run limit is spent (a test run is refused; see POST /{id}/test)."""

    status_code = 429


class Unauthorized(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class ServiceUnavailable(AppError):
    status_code = 503


def error_body(code: str, message: str, fields: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Error": code, "Message": message}
    if fields:
        body["Fields"] = [{"Field": f, "Message": m} for f, m in fields]
    return body


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "is invalid"))
    if err.get("type") == "missing":
        return "is required"
    if err.get("type") == "json_invalid":
        return "request body is not valid JSON"
    return msg.removeprefix("Value error, ")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.fields), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [(_location(tuple(e.get("loc", ()))), _validation_message(e)) for e in exc.errors()]
        summary = "; ".join(f"{f}: {m}" for f, m in fields[:5])
        return JSONResponse(
            error_body("ValidationError", f"The request is invalid: {summary}", fields), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {e.status_code: e.code for e in (NotFound, Unauthorized, Forbidden)} | {
            405: "MethodNotAllowed"
        }
        return JSONResponse(
            error_body(codes.get(exc.status_code, "HttpError"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
