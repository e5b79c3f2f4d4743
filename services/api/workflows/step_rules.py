"""What a step must satisfy to be saved (CONTRACT.md §5): templates parse, ActionConfig fits the action,
and the credential is the department's own and of a type the action can use."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.credentials.repository import CredentialRepository
from services.api.errors import ValidationFailed
from services.api.workflows.schemas import WorkflowStepInput
from shared.action_configs import ActionConfigError, is_template, parse_action_config
from shared.credential_types import ORIGIN_BOUND, url_origin
from shared.enums import ACTION_CREDENTIALS, ActionType, CredentialType
from shared.templating import TemplateError, validate_condition, validate_config, validate_template


def normalised_condition(value: str | None) -> str | None:
    """A blank condition means "no condition"."""
    return value if value is not None and value.strip() else None


async def check_step(session: AsyncSession, department_id: int, data: WorkflowStepInput) -> None:
    """Raise ValidationFailed listing every problem of the step."""
    action = ActionType(data.ActionType)
    errors: list[tuple[str, str]] = []
    try:
        validate_template(data.OutputTemplate)
    except TemplateError as exc:
        errors.append(("OutputTemplate", exc.message))
    condition = normalised_condition(data.ConditionExpression)
    if condition is not None:
        try:
            validate_condition(condition)
        except TemplateError as exc:
            errors.append(("ConditionExpression", exc.message))
    credential_errors, origins = await _credential_errors(
        session, department_id, action, data.WorkflowCredentialId
    )
    errors.extend(credential_errors)
    try:
        config = parse_action_config(
            action, data.ActionConfig, has_credential=data.WorkflowCredentialId is not None
        )
        validate_config(config)
        errors.extend(_origin_errors(config, origins, data.WorkflowCredentialId))
    except ActionConfigError as exc:
        errors.extend(exc.fields)
    except TemplateError as exc:
        errors.append(("ActionConfig", exc.message))
    if errors:
        summary = "; ".join(f"{field}: {message}" for field, message in errors[:5])
        raise ValidationFailed(f"The step is invalid: {summary}", fields=errors)


async def _credential_errors(
    session: AsyncSession, department_id: int, action: ActionType, credential_id: int | None
) -> tuple[list[tuple[str, str]], list[str] | None]:
    """Problems with the step's credential, and the origins it is bound to (None: not an HTTP one)."""
    allowed = ACTION_CREDENTIALS[action]
    names = ", ".join(sorted(t.name for t in allowed if t is not None))
    if credential_id is None:
        if None in allowed:
            return [], None
        return [("WorkflowCredentialId", f"is required: {action.name} needs a {names} credential")], None
    credential = await CredentialRepository.from_session(session).get(department_id, credential_id)
    if credential is None:
        return [
            ("WorkflowCredentialId", f"credential {credential_id} was not found in your department")
        ], None
    ctype = CredentialType(credential.credential_type)
    if ctype not in allowed:
        wanted = f"a {names} credential" if names else "no credential"
        return [
            (
                "WorkflowCredentialId",
                f"credential {credential_id} is {ctype.name}; {action.name} needs {wanted}",
            )
        ], None
    if ctype not in ORIGIN_BOUND:
        return [], None
    origins = list(credential.public_data.get("allowedOrigins") or [])
    if not origins:  # stored before credentials were bound to origins
        return [
            (
                "WorkflowCredentialId",
                f"credential {credential_id} has no allowedOrigins: set the origins it may be sent to "
                "(and send its secret again) before a step uses it",
            )
        ], None
    return [], origins


def _origin_errors(
    config: dict[str, Any], origins: list[str] | None, credential_id: int | None
) -> list[tuple[str, str]]:
    """A static URL must be on one of the credential's origins; a templated one is checked when sent."""
    url = config.get("url")
    if origins is None or not isinstance(url, str) or is_template(url):
        return []
    origin = url_origin(url)
    if origin in origins:
        return []
    return [
        (
            "ActionConfig.url",
            f"is on {origin}, but credential {credential_id} may only be sent to {', '.join(origins)}",
        )
    ]
