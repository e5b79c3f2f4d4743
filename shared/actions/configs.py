"""Checking a step's ActionConfig against its action's model, at two checkpoints.

* ``parse_action_config`` when a step is saved: the JSON text must be an object with known keys
  (matched case-insensitively, normalised to camelCase), required keys present and values of the
  right type. A string containing Liquid (``{{`` or ``{%``) is rendered at run time, so only its type
  is checked now; static values get the full checks (https URL, email syntax, ranges...).
* ``rendered_config`` in the executor after rendering: every value is now static, so it converts
  strings back to numbers and booleans, applies every check, fills the defaults and returns the typed
  model the action's ``perform`` receives. ``coerce_rendered`` is the same as a plain dict.

The fields are checked one by one (each with its own pydantic adapter, built once per model) so that
every problem is reported with its key and a templated value can pass before rendering.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from shared.actions.config_fields import is_template
from shared.actions.registry import ACTION_SPECS
from shared.actions.spec import ActionConfig
from shared.enums import ActionType

__all__ = [
    "FIELD_PREFIX",
    "MAX_CONFIG_BYTES",
    "ActionConfigError",
    "allowed_keys",
    "coerce_rendered",
    "config_model",
    "is_template",
    "parse_action_config",
    "rendered_config",
]

FIELD_PREFIX = "ActionConfig"
MAX_CONFIG_BYTES = 64 * 1024


class ActionConfigError(ValueError):
    """An ActionConfig that does not fit its action type; ``fields`` lists (field path, message) pairs."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        super().__init__("; ".join(f"{path}: {message}" for path, message in fields))


class _Field:
    __slots__ = ("adapter", "info", "name", "required")

    def __init__(self, name: str, adapter: TypeAdapter[Any], info: FieldInfo) -> None:
        self.name = name
        self.adapter = adapter
        self.info = info
        self.required = info.is_required()

    @property
    def default(self) -> Any:
        """A fresh default (a new dict for headers), or None for a required field."""
        return None if self.required else self.info.get_default(call_default_factory=True)


@cache
def _fields(model: type[ActionConfig]) -> dict[str, _Field]:
    """camelCase key -> its field, in declaration order (the order error messages list them)."""
    fields: dict[str, _Field] = {}
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        fields[info.alias or name] = _Field(name, TypeAdapter(annotation), info)
    return fields


def config_model(action_type: ActionType) -> type[ActionConfig]:
    return ACTION_SPECS[ActionType(action_type)].config


def allowed_keys(action_type: ActionType) -> list[str]:
    return list(_fields(config_model(action_type)))


def _canonical(
    action_type: ActionType, data: Mapping[str, Any], errors: list[tuple[str, str]]
) -> tuple[dict[str, _Field], dict[str, Any]]:
    schema = _fields(config_model(action_type))
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


def _message(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    return error["msg"].removeprefix("Value error, ")


def _check_all(
    action_type: ActionType,
    data: Mapping[str, Any],
    *,
    rendered: bool,
    has_credential: bool | None,
) -> dict[str, Any]:
    errors: list[tuple[str, str]] = []
    schema, given = _canonical(action_type, data, errors)
    context = {"rendered": rendered}
    checked: dict[str, Any] = {}
    for key, value in given.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # absent: the original wrote null for unset keys
        if not rendered and isinstance(value, str) and is_template(value):
            if "\x00" in value:
                errors.append((f"{FIELD_PREFIX}.{key}", "must not contain NUL characters"))
            else:
                checked[key] = value  # checked once rendered
            continue
        try:
            checked[key] = schema[key].adapter.validate_python(value, context=context)
        except ValidationError as exc:
            errors.append((f"{FIELD_PREFIX}.{key}", _message(exc)))
    for key, field in schema.items():
        if field.required and key not in checked and not any(p == f"{FIELD_PREFIX}.{key}" for p, _ in errors):
            message = "is empty after rendering" if rendered and key in given else "is required"
            errors.append((f"{FIELD_PREFIX}.{key}", message))
    model = config_model(action_type)
    errors.extend(
        (f"{FIELD_PREFIX}.{key}", message)
        for key, message in model.rules(checked, has_credential=has_credential)
    )
    if errors:
        raise ActionConfigError(errors)
    return checked


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
    filled (``rendered_config`` does that). With ``has_credential=False``, webhook actions must carry
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


def rendered_config(
    action_type: ActionType,
    rendered: Mapping[str, Any],
    *,
    now: datetime | None = None,
    has_credential: bool | None = None,
) -> ActionConfig:
    """The typed, fully checked config an action performs with, from its rendered ActionConfig.

    Time-stamped default names use ``now`` (UTC; pass the run's queue time to keep names stable
    across retries). Raises ``ActionConfigError``.
    """
    config = coerce_rendered(action_type, rendered, now=now, has_credential=has_credential)
    return built(action_type, config)


def coerce_rendered(
    action_type: ActionType,
    rendered: Mapping[str, Any],
    *,
    now: datetime | None = None,
    has_credential: bool | None = None,
) -> dict[str, Any]:
    """``rendered_config`` as a dict (camelCase keys): every key of the schema is present except
    optional keys without a default. Raises ``ActionConfigError``."""
    action_type = _action_type(action_type)
    if not isinstance(rendered, Mapping):
        raise ActionConfigError([(FIELD_PREFIX, "must be a JSON object")])
    config = _check_all(action_type, rendered, rendered=True, has_credential=has_credential)
    model = config_model(action_type)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    for key, field in _fields(model).items():
        if key in config:
            continue
        if key in model.stamped:
            config[key] = model.stamped[key](moment)
        elif (default := field.default) is not None:
            config[key] = default
    return config


def built(action_type: ActionType, checked: Mapping[str, Any]) -> ActionConfig:
    """The model of a config ``coerce_rendered`` returned, without validating it again (a few µs)."""
    model = config_model(action_type)
    schema = _fields(model)
    return model.model_construct(
        **{schema[key].name: value for key, value in checked.items() if key in schema}
    )
