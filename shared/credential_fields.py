"""Building blocks of credential schemas: the base model, reusable field types and URL/origin rules.

The per-type models live in ``shared/credential_types.py`` and, for types owned by one action provider,
in that provider's module under ``shared/actions/``.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self, cast

import httpx
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

MASK = "••••••"
FIELD_PREFIX = "Data"

FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_EXCEPT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class CredentialValidationError(ValueError):
    """Credential data that does not fit its type; ``fields`` lists (field path, message) pairs."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        super().__init__("; ".join(f"{path}: {message}" for path, message in fields))


# --- reusable field types ---------------------------------------------------------------------------


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must be a single line without control characters")
    return value


def _multi_line(value: str) -> str:
    if _CONTROL_EXCEPT_NEWLINES.search(value):
        raise ValueError("must not contain control characters")
    return value


def _no_spaces(value: str) -> str:
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain spaces")
    return value


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be between 1 and 65535")
    return value


def _hostname(value: str) -> str:
    """A DNS name or an IP address, normalised to ASCII (punycode) and lower case."""
    if "://" in value or "/" in value:
        raise ValueError("must be a host name or IP address, not a URL")
    candidate = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        pass
    if ":" in value:
        raise ValueError("must be a host name or IP address without a port (use the port field)")
    try:
        ascii_name = value.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("is not a valid host name") from None
    name = ascii_name.rstrip(".").lower()
    if not name or len(name) > 253 or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        raise ValueError("is not a valid host name")
    return name


def _email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"is not a valid email address ({exc})") from None


def is_loopback_host(host: str) -> bool:
    if host.lower() in {"localhost", "localhost."} or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validate_endpoint_url(value: str) -> str:
    """An http(s) service endpoint; plain http only for loopback (local S3 stand-ins, Azurite)."""
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("is not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must use https (plain http is allowed only for a loopback host)")
    return value


def matching(pattern: str, message: str) -> AfterValidator:
    """A validator with a message a person understands, instead of the regular expression."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def snake_name(camel: str) -> str:
    """The model attribute of a camelCase key."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Line = Annotated[str, StringConstraints(min_length=1, max_length=4096), AfterValidator(_single_line)]
Token = Annotated[Line, AfterValidator(_no_spaces)]
MultiLine = Annotated[str, StringConstraints(min_length=1, max_length=32768), AfterValidator(_multi_line)]
Host = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_hostname)]
Port = Annotated[int, AfterValidator(_port)]
Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
EndpointUrl = Annotated[Line, AfterValidator(validate_endpoint_url)]


def url_origin(url: str) -> str | None:
    """``https://host[:port]`` of an https URL (host lower-case, IDNA-encoded; port only when not
    443), or None when ``url`` is not a usable https URL."""
    try:
        parsed = httpx.URL(url.strip())
        host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    except (httpx.InvalidURL, ValueError, UnicodeError, TypeError):
        return None
    if parsed.scheme != "https" or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"https://{host}" + (f":{parsed.port}" if parsed.port not in (None, 443) else "")


def _origin(value: str) -> str:
    parsed = urllib.parse.urlsplit(value)
    origin = url_origin(value)
    if (
        origin is None
        or parsed.path not in ("", "/")
        or parsed.query
        or parsed.fragment
        or "@" in parsed.netloc
    ):
        raise ValueError(
            "must be an https origin like https://api.example.org or https://host:8443 (no path)"
        )
    return origin


def _origin_list(value: Any) -> Any:
    # A form may send "https://a.example, https://b.example" as one string.
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    return value


MAX_ORIGINS = 10
Origins = Annotated[
    list[Annotated[Line, AfterValidator(_origin)]],
    BeforeValidator(_origin_list),
    Field(min_length=1, max_length=MAX_ORIGINS),
]
HeaderName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256),
    matching(_HEADER_NAME.pattern, "is not a valid HTTP header name"),
]


def _secret(*, required: bool = False) -> Any:
    # writeOnly/password mark the field in JSON schema (OpenAPI) and drive SECRET_FIELDS.
    extra: JsonDict = {"writeOnly": True, "format": "password"}
    if required:
        return Field(repr=False, json_schema_extra=extra)
    return Field(default=None, repr=False, json_schema_extra=extra)


# --- models -----------------------------------------------------------------------------------------


class CredentialData(BaseModel):
    """Base of the per-type schemas: camelCase keys, unknown keys forbidden, strings stripped."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        alias_generator=to_camel,
        frozen=True,
        hide_input_in_errors=True,  # inputs may be secrets
    )

    # Input keys accepted for compatibility and mapped by a "before" validator.
    legacy_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            # Absent, so that defaults apply: forms send "" and null for fields left empty.
            return {
                k: v for k, v in data.items() if v is not None and not (isinstance(v, str) and not v.strip())
            }
        return data

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Self:
        """The model of decrypted data that was checked when it was saved, built without validating again."""
        names = {info.alias or name: name for name, info in cls.model_fields.items()}
        return cast(
            Self, cls.model_construct(**{names[key]: value for key, value in data.items() if key in names})
        )

    def cross_field_errors(self) -> list[tuple[str, str]]:
        """Rules across fields, as (camelCase field, message); checked after the fields themselves."""
        return []
