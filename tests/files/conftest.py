"""Fixtures for the file-upload action tests: a local CA trusted through SSL_CERT_FILE, an egress
guard that allows loopback, and a builder for action contexts."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from services.executor.actions.base import ActionContext, ActionDeps, ActionSettings
from services.executor.egress import EgressGuard
from shared.enums import ActionType, Plan
from tests.peers.listener import INTERNAL, Listener

LOOPBACK = ["127.0.0.0/8"]
# "localhost" may also resolve to ::1, which the loopback allowance does not cover.
LOCALHOST = {"localhost": "127.0.0.1"}


@pytest.fixture
def egress() -> EgressGuard:
    return EgressGuard(allow_cidrs=LOOPBACK, host_overrides=LOCALHOST)


@pytest.fixture
def deps(egress: EgressGuard) -> ActionDeps:
    return ActionDeps(egress=egress, settings=ActionSettings(upload_timeout_s=15.0, http_timeout_s=10.0))


@pytest.fixture
def strict_deps() -> ActionDeps:
    """The production default: no allowed CIDRs, so loopback is refused."""
    return ActionDeps(
        egress=EgressGuard(host_overrides=LOCALHOST), settings=ActionSettings(upload_timeout_s=15.0)
    )


@pytest.fixture
async def environment_proxy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Listener]:
    """``HTTP(S)_PROXY`` set to a listener on an internal address, which must see no connection: an
    SDK honouring it would send the request to an address the egress guard never checked."""
    async with Listener() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://{INTERNAL}:{proxy.port}")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield proxy


def at_base_url(deps: ActionDeps, base: str, *settings: str) -> ActionDeps:
    """``deps`` with the named base-URL settings (``box_api_base_url``...) pointed at ``base``: a test
    peer, or a loopback port where nothing listens."""
    return dataclasses.replace(
        deps, settings=dataclasses.replace(deps.settings, **dict.fromkeys(settings, base))
    )


def make_ctx(
    action_type: ActionType,
    *,
    content: str,
    config: Mapping[str, Any] | None = None,
    credential: Mapping[str, Any] | None = None,
) -> ActionContext:
    return ActionContext(
        run_id=41,
        step_id=7,
        workflow_id=3,
        department_id=1,
        action_type=action_type,
        content=content,
        config=dict(config or {}),
        credential=dict(credential) if credential is not None else None,
        plan=Plan.Paid,
    )


def files_under(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` by its relative POSIX path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
