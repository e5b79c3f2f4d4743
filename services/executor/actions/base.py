"""The contract between the execution engine and one action implementation.

An action receives everything already rendered and decrypted, performs one side effect,
and either returns an ``ActionResult`` or raises ``ActionError``. Actions never touch the
database: daily send quotas go through ``SendQuota``; outbound connections go through the
``EgressGuard`` in ``ActionDeps``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.executor.egress import EgressGuard
from shared.actions.outcomes import ActionError, ActionResult, permanent, transient
from shared.actions.spec import SendQuota
from shared.config import ActionSection
from shared.enums import ActionType, Plan

__all__ = [
    "Action",
    "ActionContext",
    "ActionDeps",
    "ActionError",
    "ActionResult",
    "SendQuota",
    "UnlimitedQuota",
    "permanent",
    "transient",
]


@dataclass(frozen=True, slots=True)
class ActionContext:
    run_id: int
    step_id: int
    workflow_id: int
    department_id: int
    action_type: ActionType
    content: str  # the rendered OutputTemplate (at most 256 KB)
    config: Mapping[str, Any]  # ActionConfig, every string value already rendered
    credential: Mapping[str, Any] | None  # decrypted canonical credential data (camelCase keys)
    plan: Plan
    attempt: int = 1

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and redeliveries of the same step of the same run."""
        return f"wf-run-{self.run_id}-step-{self.step_id}"


class UnlimitedQuota:
    async def reserve(self, count: int) -> None:
        return None

    async def release(self, count: int) -> None:
        return None


@dataclass(slots=True)
class ActionDeps:
    egress: EgressGuard
    settings: ActionSection = field(default_factory=ActionSection)
    quota: SendQuota = field(default_factory=UnlimitedQuota)


Action = Callable[[ActionContext, ActionDeps], Awaitable[ActionResult]]
