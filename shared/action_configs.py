"""ActionConfig: the per-step settings object of each action type.

Two checkpoints:

* ``parse_action_config`` when a step is saved: the JSON text must be an object with known keys
  (matched case-insensitively, normalised to camelCase), required keys present and values of the
  right type. A string containing Liquid (``{{`` or ``{%``) is rendered at run time, so only its type
  is checked now; static values get the full checks (https URL, email syntax, ranges...).
* ``coerce_rendered`` in the executor after rendering: every value is now static, so it converts
  strings back to numbers and booleans, applies every check, and fills the defaults.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from email_validator import EmailNotValidError, validate_email

from shared.credential_types import FORBIDDEN_HEADERS
from shared.enums import ActionType
from shared.webhook_rules import WebhookUrlError, validate_webhook_url

FIELD_PREFIX = "ActionConfig"
MAX_CONFIG_BYTES = 64 * 1024


class ActionConfigError(ValueError):
    """An ActionConfig that does not fit its action type; ``fields`` lists (field path, message) pairs."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        super().__init__("; ".join(f"{path}: {message}" for path, message in fields))


# Every templated value is rendered out of the step's one budget. The schema keys of an action are
# few and fixed; headers are the one open-ended map, so capping them caps a config's templates
# (the review found 373 templated headers accepted).
MAX_HEADERS = 50


def is_template(value: str) -> bool:
    """True when the value holds Liquid markup and so can only be checked after rendering."""
    return "{{" in value or "{%" in value


def split_addresses(value: str) -> list[str]:
    """Recipients of a comma- (or semicolon-) separated list, blanks dropped."""
    return [part.strip() for part in re.split(r"[,;]", value) if part.strip()]


# --- value checks: take a static string, return it normalised or raise ValueError -------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must be a single line without control characters")
    return value


def _one_line_text(value: str) -> str:
    # A rendered template often ends with a newline; in a header-like field it becomes a space.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return re.sub(r"\s*[\r\n]+\s*", " ", value).strip()


def _emails(value: str) -> str:
    addresses = split_addresses(value)
    if not addresses:
        raise ValueError("has no email address")
    normalised = []
    for address in addresses:
        try:
            normalised.append(validate_email(address, check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            raise ValueError(f"'{address}' is not a valid email address ({exc})") from None
    return ", ".join(normalised)


def _email(value: str) -> str:
    result = _emails(value)
    if "," in result:
        raise ValueError("must be a single email address")
    return result


def _phone_numbers(value: str) -> str:
    numbers = [re.sub(r"[\s().-]", "", part) for part in split_addresses(value)]
    if not numbers:
        raise ValueError("has no phone number")
    for number in numbers:
        if not _E164.match(number):
            raise ValueError(f"'{number}' is not an E.164 phone number like +15551234567")
    return ",".join(numbers)


def _url(value: str, *, what: str = "url") -> urllib.parse.SplitResult:
    if _CONTROL.search(value) or " " in value:
        raise ValueError("must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
        httpx.URL(value).host  # noqa: B018 - the executor's parser; IDNA refuses "xn--localhost-"
    except (ValueError, httpx.InvalidURL):
        raise ValueError(f"is not a valid {what}") from None
    if parts.scheme.lower() != "https":
        raise ValueError("must use https (plain http and other schemes are refused)")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password (use a credential)")
    return parts


def _https_url(value: str) -> str:
    _url(value)
    return value


def _media_type(value: str) -> str:
    _single_line(value)
    if not _MEDIA_TYPE.match(value):
        raise ValueError("must be a media type like application/json")
    return value


def _path(value: str) -> str:
    if "\x00" in value or "\r" in value or "\n" in value:
        raise ValueError("must not contain NUL or line breaks")
    return value


def _filename(value: str) -> str:
    _path(value)
    if "/" in value or "\\" in value:
        raise ValueError("must be a file name without '/' or '\\' (put folders in the path)")
    if value in {".", ".."} or len(value) > 255:
        raise ValueError("is not a usable file name")
    return value


def _object_key(value: str) -> str:
    _path(value)
    if len(value.encode()) > 1024:
        raise ValueError("must be at most 1024 bytes")
    return value


def _dropbox_path(value: str) -> str:
    _path(value)
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    by_lower = {choice.lower(): choice for choice in choices}

    def check(value: str) -> str:
        try:
            return by_lower[value.strip().lower()]
        except KeyError:
            raise ValueError(f"must be one of: {', '.join(choices)}") from None

    return check


def _pattern(pattern: str, message: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(message)
        return value

    return check


def _theme_color(value: str) -> str:
    color = value.strip().removeprefix("#")
    if not re.fullmatch(r"[0-9A-Fa-f]{6}", color):
        raise ValueError("must be a hex colour like 0076D7")
    return color.upper()


def _webhook(kind: Literal["teams", "slack", "discord"]) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            validate_webhook_url(kind, value)
        except WebhookUrlError as exc:
            raise ValueError(str(exc)) from None
        return value

    return check


# --- per-action schema -----------------------------------------------------------------------------


def _utc_filename(now: datetime) -> str:
    return now.strftime("workflow_%Y%m%d%H%M%S.txt")


def _utc_object_key(now: datetime) -> str:
    return now.strftime("workflow/%Y/%m/%d/%H%M%S.txt")


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One ActionConfig key: its JSON kind, whether it is required, its default and its check."""

    kind: Literal["str", "int", "bool", "headers"] = "str"
    required: bool = False
    default: str | int | bool | None = None
    default_factory: Callable[[datetime], Any] | None = None  # takes UTC "now", for time-stamped names
    check: Callable[[str], str] | None = None  # for static strings; returns the normalised value
    minimum: int | None = None
    maximum: int | None = None
    accepts_number: bool = False  # a numeric id may be written as a JSON number


_TEXT = ConfigKey(check=_one_line_text)
_FILENAME = ConfigKey(check=_filename, default_factory=_utc_filename)

_CALL_API: dict[str, ConfigKey] = {
    "url": ConfigKey(required=True, check=_https_url),
    "contentType": ConfigKey(default="application/json", check=_media_type),
    "timeoutSeconds": ConfigKey(kind="int", default=30, minimum=1, maximum=120),
    "headers": ConfigKey(kind="headers", default_factory=lambda _now: {}),
}
_FILE_TRANSFER: dict[str, ConfigKey] = {
    "remotePath": ConfigKey(default="/", check=_path),
    "filename": _FILENAME,
    "overwrite": ConfigKey(kind="bool", default=True),
}

ACTION_CONFIG_SCHEMAS: dict[ActionType, dict[str, ConfigKey]] = {
    ActionType.SendEmail: {
        "to": ConfigKey(required=True, check=_emails),
        "cc": ConfigKey(check=_emails),
        "subject": ConfigKey(required=True, check=_one_line_text),
        "replyTo": ConfigKey(check=_email),
    },
    ActionType.SendSms: {"to": ConfigKey(required=True, check=_phone_numbers)},
    ActionType.CallApiGet: _CALL_API,
    ActionType.CallApiPost: _CALL_API,
    ActionType.CallApiPut: _CALL_API,
    ActionType.CallApiDelete: _CALL_API,
    ActionType.UploadFileFtp: _FILE_TRANSFER,
    ActionType.UploadFileSftp: _FILE_TRANSFER,
    ActionType.UploadFileS3: {
        "s3Key": ConfigKey(check=_object_key, default_factory=_utc_object_key),
        "contentType": ConfigKey(default="text/plain", check=_media_type),
        "serverSideEncryption": ConfigKey(check=_one_of("AES256", "aws:kms")),
        "kmsKeyId": ConfigKey(check=_pattern(r"^\S{1,2048}$", "must be a KMS key id, ARN or alias")),
    },
    ActionType.SendTeamsMessage: {
        "title": _TEXT,
        "themeColor": ConfigKey(default="0076D7", check=_theme_color),
        "webhookUrl": ConfigKey(check=_webhook("teams")),
    },
    ActionType.SendSlackMessage: {
        "channel": _TEXT,
        "username": _TEXT,
        "iconEmoji": ConfigKey(check=_pattern(r"^:[\w+'-]+:$", "must be an emoji code like :fire:")),
        "webhookUrl": ConfigKey(check=_webhook("slack")),
    },
    ActionType.SendDiscordMessage: {
        "username": ConfigKey(
            check=_pattern(r"^[^\x00-\x1f\x7f]{1,80}$", "must be 1-80 characters on one line")
        ),
        "avatarUrl": ConfigKey(check=_https_url),
        "webhookUrl": ConfigKey(check=_webhook("discord")),
    },
    ActionType.UploadFileAzureBlob: {
        "blobName": ConfigKey(check=_object_key, default_factory=_utc_object_key),
        "contentType": ConfigKey(default="text/plain", check=_media_type),
    },
    ActionType.UploadFileBox: {
        "folderId": ConfigKey(
            default="0", check=_pattern(r"^\d{1,32}$", "must be a numeric Box folder id"), accepts_number=True
        ),
        "filename": _FILENAME,
    },
    ActionType.UploadFileDropbox: {
        "targetPath": ConfigKey(default="/", check=_dropbox_path),
        "filename": _FILENAME,
        "writeMode": ConfigKey(default="add", check=_one_of("add", "overwrite")),
    },
}

_WEBHOOK_ACTIONS = frozenset(
    {ActionType.SendTeamsMessage, ActionType.SendSlackMessage, ActionType.SendDiscordMessage}
)


def allowed_keys(action_type: ActionType) -> list[str]:
    return list(ACTION_CONFIG_SCHEMAS[ActionType(action_type)])


# --- conversion -------------------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _static_string(spec: ConfigKey, value: str) -> str:
    if spec.check is None:
        return value
    try:
        return spec.check(value)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None


def _int_value(spec: ConfigKey, value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        value = int(value)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid("must be a whole number")
    if (spec.minimum is not None and value < spec.minimum) or (
        spec.maximum is not None and value > spec.maximum
    ):
        raise _Invalid(f"must be between {spec.minimum} and {spec.maximum}")
    return value


_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


def _bool_value(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Invalid("must be true or false")


def _headers_value(value: Any, *, rendered: bool) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _Invalid("must be an object of header names to string values")
    if len(value) > MAX_HEADERS:
        raise _Invalid(f"must have at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    headers: dict[str, str] = {}
    for name, header_value in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise _Invalid(f"'{name}' is not a valid header name")
        if name.lower() in FORBIDDEN_HEADERS:
            raise _Invalid(f"'{name}' cannot be set (the HTTP client sets it)")
        if name.lower() in seen:
            raise _Invalid(f"'{name}' is given more than once")
        seen.add(name.lower())
        if isinstance(header_value, bool) or not isinstance(header_value, str | int | float):
            raise _Invalid(f"value of '{name}' must be a string")
        text = str(header_value)
        if rendered or not is_template(text):
            text = text.strip()
            if _CONTROL.search(text):
                raise _Invalid(f"value of '{name}' must be a single line without control characters")
        elif "\x00" in text:
            raise _Invalid(f"value of '{name}' must not contain NUL characters")
        headers[name] = text
    return headers


def _convert(spec: ConfigKey, value: Any, *, rendered: bool) -> Any:
    """The checked value; before rendering, templated strings pass with a type check only."""
    if spec.kind == "headers":
        return _headers_value(value, rendered=rendered)
    if not rendered and isinstance(value, str) and is_template(value):
        if "\x00" in value:
            raise _Invalid("must not contain NUL characters")
        return value
    if spec.kind == "int":
        return _int_value(spec, value)
    if spec.kind == "bool":
        return _bool_value(value)
    if spec.accepts_number and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Invalid("must be a string")
    return _static_string(spec, value.strip())


def _canonical(
    action_type: ActionType, data: Mapping[str, Any], errors: list[tuple[str, str]]
) -> tuple[dict[str, ConfigKey], dict[str, Any]]:
    schema = ACTION_CONFIG_SCHEMAS[action_type]
    by_lower = {name.lower(): name for name in schema}
    result: dict[str, Any] = {}
    for key, value in data.items():
        canonical = by_lower.get(str(key).lower())
        if canonical is None:
            allowed = ", ".join(schema) or "none"
            errors.append(
                (f"{FIELD_PREFIX}.{key}", f"unknown key for {action_type.name}; allowed: {allowed}")
            )
        elif canonical in result:
            errors.append((f"{FIELD_PREFIX}.{canonical}", "given more than once (keys are case-insensitive)"))
        else:
            result[canonical] = value
    return schema, result


def _check_all(
    action_type: ActionType,
    data: Mapping[str, Any],
    *,
    rendered: bool,
    has_credential: bool | None,
) -> dict[str, Any]:
    errors: list[tuple[str, str]] = []
    schema, given = _canonical(action_type, data, errors)
    checked: dict[str, Any] = {}
    for name, value in given.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # absent: the original wrote null for unset keys
        try:
            checked[name] = _convert(schema[name], value, rendered=rendered)
        except _Invalid as exc:
            errors.append((f"{FIELD_PREFIX}.{name}", exc.message))
    for name, spec in schema.items():
        if (
            spec.required
            and name not in checked
            and not any(path == f"{FIELD_PREFIX}.{name}" for path, _ in errors)
        ):
            message = "is empty after rendering" if rendered and name in given else "is required"
            errors.append((f"{FIELD_PREFIX}.{name}", message))
    errors.extend(_cross_key_errors(action_type, checked, has_credential))
    if errors:
        raise ActionConfigError(errors)
    return checked


def _cross_key_errors(
    action_type: ActionType, config: Mapping[str, Any], has_credential: bool | None
) -> list[tuple[str, str]]:
    errors = []
    if action_type in _WEBHOOK_ACTIONS and has_credential is False and "webhookUrl" not in config:
        errors.append((f"{FIELD_PREFIX}.webhookUrl", "is required when the step has no credential"))
    if action_type == ActionType.UploadFileS3 and "kmsKeyId" in config:
        sse = config.get("serverSideEncryption")
        if sse is None or (sse != "aws:kms" and not is_template(sse)):
            errors.append((f"{FIELD_PREFIX}.kmsKeyId", 'needs serverSideEncryption "aws:kms"'))
    return errors


def _action_type(action_type: ActionType | int) -> ActionType:
    try:
        return ActionType(action_type)
    except ValueError:
        raise ActionConfigError([("ActionType", f"unknown action type {action_type!r}")]) from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ActionConfigError([(f"{FIELD_PREFIX}.{key}", "given more than once")])
        result[key] = value
    return result


def parse_action_config(
    action_type: ActionType, raw: str | None, *, has_credential: bool | None = None
) -> dict[str, Any]:
    """Check a step's ActionConfig JSON text when the step is saved; return the normalised object.

    Keys come back in canonical camelCase; nulls and blank strings are dropped; defaults are not
    filled (``coerce_rendered`` does that). With ``has_credential=False``, webhook actions must carry
    ``webhookUrl``. Raises ``ActionConfigError``.
    """
    action_type = _action_type(action_type)
    text = raw if raw is not None else ""
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise ActionConfigError([(FIELD_PREFIX, f"must be at most {MAX_CONFIG_BYTES} bytes")])
    if not text.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise ActionConfigError(
                [(FIELD_PREFIX, f"is not valid JSON ({exc.msg} at position {exc.pos})")]
            ) from None
    if not isinstance(data, dict):
        raise ActionConfigError([(FIELD_PREFIX, "must be a JSON object")])
    return _check_all(action_type, data, rendered=False, has_credential=has_credential)


def coerce_rendered(
    action_type: ActionType,
    rendered: Mapping[str, Any],
    *,
    now: datetime | None = None,
    has_credential: bool | None = None,
) -> dict[str, Any]:
    """Typed, fully checked config for an action, from its rendered ActionConfig.

    Every key of the schema is present except optional keys without a default. Time-stamped default
    names use ``now`` (UTC; pass the run's queue time to keep names stable across retries).
    Raises ``ActionConfigError``.
    """
    action_type = _action_type(action_type)
    if not isinstance(rendered, Mapping):
        raise ActionConfigError([(FIELD_PREFIX, "must be a JSON object")])
    config = _check_all(action_type, rendered, rendered=True, has_credential=has_credential)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    for name, spec in ACTION_CONFIG_SCHEMAS[action_type].items():
        if name in config:
            continue
        if spec.default_factory is not None:
            config[name] = spec.default_factory(moment)
        elif spec.default is not None:
            config[name] = spec.default
    return config
