"""What a step must satisfy to be saved (docs/api-behaviour.md, Validation): templates parse,
ActionConfig fits the action, and the credential is the department's own and of a type the action can use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.credentials.repository import CredentialRepository
from services.api.errors import ValidationFailed
from services.api.workflows.schemas import WorkflowStepInput
from shared.actions.configs import ActionConfigError, is_template, parse_action_config
from shared.actions.registry import ACTION_CREDENTIALS
from shared.credential_types import MAX_ORIGINS, ORIGIN_BOUND, url_origin
from shared.enums import ActionType, CredentialType
from shared.models import Workflow, WorkflowCredential, WorkflowStep
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
    credential_errors, credential = await _credential_errors(
        session, department_id, action, data.WorkflowCredentialId
    )
    errors.extend(credential_errors)
    pin: list[str] | None = None
    try:
        config = parse_action_config(
            action, data.ActionConfig, has_credential=data.WorkflowCredentialId is not None
        )
        validate_config(config)
        if credential is not None:
            origin_errors, pin = await _origin_errors(session, department_id, config, credential)
            errors.extend(origin_errors)
    except ActionConfigError as exc:
        errors.extend(exc.fields)
    except TemplateError as exc:
        errors.append(("ActionConfig", exc.message))
    if errors:
        summary = "; ".join(f"{field}: {message}" for field, message in errors[:5])
        raise ValidationFailed(f"The step is invalid: {summary}", fields=errors)
    if credential is not None and pin is not None:
        # Pin on first use: the credential row is locked (by _origin_errors), so this transaction
        # decides its origins; they are public data, and the ciphertext is bound to the row id only.
        credential.public_data = {**credential.public_data, "allowedOrigins": pin}
        credential.updated_on = func.now()
        await session.flush()


async def _credential_errors(
    session: AsyncSession, department_id: int, action: ActionType, credential_id: int | None
) -> tuple[list[tuple[str, str]], WorkflowCredential | None]:
    """Problems with the step's credential, and the credential when it is an origin-bound (HTTP) one."""
    allowed = ACTION_CREDENTIALS[action]
    names = ", ".join(sorted(t.name for t in allowed if t is not None))
    if credential_id is None:
        if None in allowed:
            return [], None
        return [("WorkflowCredentialId", f"is required: {action.name} needs a {names} credential")], None
    credential = await CredentialRepository(session).get(department_id, credential_id)
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
    return [], credential


async def _origin_errors(
    session: AsyncSession, department_id: int, config: dict[str, Any], credential: WorkflowCredential
) -> tuple[list[tuple[str, str]], list[str] | None]:
    """Check the step's URL against the credential's origins; for a credential without origins,
    also work out the origins to pin it to (returned second; None: nothing to pin)."""
    credential_id = credential.workflow_credential_id
    url = config.get("url")
    templated = not isinstance(url, str) or is_template(url)
    origins = _origins(credential)
    if not origins:
        # Lock the row before deciding, so two steps saved at once cannot pin it to different origins.
        locked = await CredentialRepository(session).get(department_id, credential_id, for_update=True)
        origins = _origins(locked) if locked is not None else []
    if origins:
        # A templated URL is checked by the executor when it sends.
        return ([] if templated else _url_errors(str(url), origins, credential_id)), None
    if templated:
        return [
            (
                "WorkflowCredentialId",
                f"credential {credential_id} has no allowedOrigins and a templated URL cannot pin it: "
                "set allowedOrigins on the credential (sending its secret again)",
            )
        ], None
    origin = url_origin(str(url))
    if origin is None:  # not an https URL: parse_action_config reports it
        return [], None
    used, used_origins = await _step_origins(session, department_id, credential_id)
    if not used:
        return [], [origin]
    # Already used by steps saved before origins existed: pin it to where those steps send it, so a
    # new step cannot move the secret to another server.
    if not used_origins or len(used_origins) > MAX_ORIGINS:
        return [
            (
                "WorkflowCredentialId",
                f"credential {credential_id} has no allowedOrigins and its steps' URLs do not say where "
                "it may go: set allowedOrigins on the credential (sending its secret again)",
            )
        ], None
    pin = sorted(used_origins)
    return _url_errors(str(url), pin, credential_id), pin


def _origins(credential: WorkflowCredential) -> list[str]:
    return list(credential.public_data.get("allowedOrigins") or [])


def _url_errors(url: str, origins: list[str], credential_id: int) -> list[tuple[str, str]]:
    origin = url_origin(url)
    if origin in origins:
        return []
    return [
        (
            "ActionConfig.url",
            f"is on {origin}, but credential {credential_id} may only be sent to {', '.join(origins)}",
        )
    ]


async def _step_origins(
    session: AsyncSession, department_id: int, credential_id: int
) -> tuple[bool, set[str]]:
    """Whether any saved step uses the credential, and the origins of those steps' static URLs."""
    stmt = (
        select(WorkflowStep.action_type, WorkflowStep.action_config)
        .join(Workflow, Workflow.workflow_id == WorkflowStep.workflow_id)
        .where(WorkflowStep.workflow_credential_id == credential_id, Workflow.department_id == department_id)
    )
    rows = (await session.execute(stmt)).all()
    origins: set[str] = set()
    for action_type, raw in rows:
        try:
            url = parse_action_config(ActionType(action_type), raw).get("url")
        except (ActionConfigError, ValueError):
            continue
        if isinstance(url, str) and not is_template(url) and (origin := url_origin(url)) is not None:
            origins.add(origin)
    return bool(rows), origins
