"""ActionType → the one function that performs it: the provider's ``perform`` (``shared/actions/``),
run through ``ExecutorHost`` with the typed config and credential."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from services.executor.action_host import ExecutorHost
from services.executor.actions.base import Action, ActionContext, ActionDeps, ActionResult, permanent
from shared.actions.configs import built
from shared.actions.registry import ACTION_SPECS
from shared.actions.spec import ActionSpec
from shared.credential_fields import CredentialData
from shared.credential_types import CREDENTIAL_MODELS
from shared.enums import ActionType


def _credential(spec: ActionSpec[Any, Any], data: Mapping[str, Any] | None) -> Any:
    """The typed credential from its decrypted data, checked when it was saved, so not again."""
    if data is None:
        return None
    model = spec.credential_model or _model_for(spec, data)
    return model.from_stored(data)


def _model_for(spec: ActionSpec[Any, Any], data: Mapping[str, Any]) -> type[CredentialData]:
    """Of the credential types an action accepts (HTTP calls: bearer, basic, API key), the one whose
    fields the decrypted data has: its required fields present and no field of another type."""
    for ctype in sorted(t for t in spec.credentials if t is not None):
        model = CREDENTIAL_MODELS[ctype]
        fields = {info.alias or name: info for name, info in model.model_fields.items()}
        if set(data) <= set(fields) and all(
            key in data for key, info in fields.items() if info.is_required()
        ):
            return model
    raise permanent(f"The step's credential is not one {spec.action_type.name} accepts")


def performer(spec: ActionSpec[Any, Any]) -> Action:
    """The engine's ``Action`` for a provider's ``perform``."""
    perform = spec.perform

    async def run(ctx: ActionContext, deps: ActionDeps) -> ActionResult:
        # ctx.config was checked and given its defaults by rendered_config: build the model, do not re-validate.
        config = built(spec.action_type, ctx.config)
        return await perform(ExecutorHost(deps, ctx.run_id), ctx, config, _credential(spec, ctx.credential))

    return run


class _Actions(Mapping[ActionType, Action]):
    """A live view of the registry, so an action registered later (a test's) is performed too."""

    def __getitem__(self, action_type: ActionType) -> Action:
        return performer(ACTION_SPECS[action_type])

    def __iter__(self) -> Iterator[ActionType]:
        return iter(ACTION_SPECS)

    def __len__(self) -> int:
        return len(ACTION_SPECS)


ACTIONS: Mapping[ActionType, Action] = _Actions()
