"""Shared schema helpers: PascalCase JSON, ISO 8601 UTC times with Z, the error shape for OpenAPI."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def iso_z(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


UtcDatetime = Annotated[datetime, PlainSerializer(iso_z, return_type=str, when_used="json")]
# Database ids: PostgreSQL integer / bigint, so larger values are invalid input rather than a 500.
Id32 = Annotated[int, Field(ge=1, le=INT32_MAX)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# A workflow's or a credential's Name: 1-250 characters, not only white space.
NonBlankName = Annotated[str, Field(min_length=1, max_length=250), AfterValidator(_not_blank)]


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)


# What the services' JSON encoder (orjson) and every 64-bit consumer can carry.
_INT_RANGE = range(-(2**63), 2**64)


def storable_problem(value: Any) -> str | None:
    """Why ``value`` could not be stored or sent on, or None: text PostgreSQL refuses (NUL, unpaired
    surrogates) or an integer beyond 64 bits (orjson cannot encode it; consumers would round it)."""
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT_RANGE:
        return "numbers must fit in 64 bits (send larger ones as text)"
    if isinstance(value, str):
        if "\x00" in value:
            return "text must not contain NUL characters"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text must be valid Unicode (no unpaired surrogates)"
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            problem = storable_problem(key) or storable_problem(item)
            if problem:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            problem = storable_problem(item)
            if problem:
                return problem
    return None


class InputSchema(BaseModel):
    """Request bodies: unknown fields are invalid, and text must be storable."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        problem = storable_problem(data)
        if problem:
            raise ValueError(problem)
        return data


class ErrorField(BaseModel):
    Field: str
    Message: str


class ErrorResult(BaseModel):
    """Every error response: a machine code, a sentence, and per-field problems for invalid input."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "Error": "ValidationError",
                    "Message": "The request is invalid: Name: is required",
                    "Fields": [{"Field": "Name", "Message": "is required"}],
                }
            ]
        }
    )

    Error: str
    Message: str
    Fields: list[ErrorField] | None = None


_DESCRIPTIONS = {
    400: "Invalid input, or a plan limit reached",
    401: "No token, or a token that is expired, forged or malformed",
    403: "The token lacks the role this endpoint needs",
    404: "Not found in your department",
    409: "The run has already finished",
    413: "The request body is larger than 1 MiB",
    429: "The department's daily run limit is spent (the message names the limit)",
    503: "A dependency (Kafka) is unavailable",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the given error codes plus 400/401/403/413, all with ErrorResult."""
    wanted = sorted({400, 401, 403, 413, *codes})
    return {code: {"model": ErrorResult, "description": _DESCRIPTIONS[code]} for code in wanted}


class DeletedResult(Schema):
    Deleted: bool = True
    Id: int
