"""Fixtures for the action tests: a LocalCA trusted through SSL_CERT_FILE, contexts, a recording quota."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.executor.actions.base import ActionContext, ActionDeps, permanent
from services.executor.egress import EgressGuard
from shared.config import ActionSection
from shared.enums import ActionType, Plan
from tests.peers.https_server import HttpsPeer
from tests.peers.tls import LocalCA

LOOPBACK = ["127.0.0.1/32"]
# Names the tests use for peers on loopback; ``localhost`` may also resolve to ::1, which is not allowed.
LOOPBACK_NAMES = {"localhost": "127.0.0.1", "mail.example.org": "127.0.0.1"}
_guards: list[EgressGuard] = []


def loopback_guard(**overrides: str) -> EgressGuard:
    """An EgressGuard that allows 127.0.0.1 and maps the test hostnames (plus ``overrides``) to it."""
    guard = EgressGuard(allow_cidrs=LOOPBACK, host_overrides={**LOOPBACK_NAMES, **overrides})
    _guards.append(guard)
    return guard


@pytest.fixture(autouse=True)
async def _close_guards() -> AsyncIterator[None]:
    yield
    while _guards:
        await _guards.pop().aclose()


@pytest.fixture
async def https_peer(local_ca: LocalCA) -> AsyncIterator[HttpsPeer]:
    async with HttpsPeer(local_ca) as peer:
        yield peer


@dataclass
class RecordingQuota:
    """A SendQuota that records reservations and releases, and can refuse."""

    refuse: bool = False
    reserved: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)

    async def reserve(self, count: int) -> None:
        if self.refuse:
            raise permanent("Daily email limit of 10 reached")
        self.reserved.append(count)

    async def release(self, count: int) -> None:
        self.released.append(count)

    @property
    def net(self) -> int:
        return sum(self.reserved) - sum(self.released)


def make_ctx(
    action_type: ActionType,
    *,
    config: dict[str, Any] | None = None,
    credential: dict[str, Any] | None = None,
    content: str = "hello",
    plan: Plan = Plan.Paid,
    run_id: int = 41,
    step_id: int = 7,
) -> ActionContext:
    return ActionContext(
        run_id=run_id,
        step_id=step_id,
        workflow_id=3,
        department_id=9,
        action_type=action_type,
        content=content,
        config=config or {},
        credential=credential,
        plan=plan,
    )


def make_deps(
    egress: EgressGuard | None = None, *, quota: RecordingQuota | None = None, **settings: Any
) -> ActionDeps:
    return ActionDeps(
        egress=egress or loopback_guard(),
        settings=ActionSection(**settings),
        quota=quota or RecordingQuota(),
    )
