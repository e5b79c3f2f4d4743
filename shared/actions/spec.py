"""What every action provider declares: its config model, the credentials it accepts and its ``perform``.

A provider module builds one ``ActionSpec`` per action type it performs; ``registry.py`` collects them.
``perform`` receives an ``ActionHost`` (the executor's HTTP client through the egress guard, settings),
the step being run, the typed config and the typed credential, so a provider imports nothing from
``services`` and an SDK only inside ``perform``.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from shared.actions.outcomes import ActionError, ActionResult
from shared.actions.replies import HttpReply
from shared.config import ActionSection
from shared.credential_fields import CredentialData
from shared.enums import ActionType, CredentialType, Plan

if TYPE_CHECKING:  # the API process never loads aiohttp for this module
    import aiohttp


class ActionConfig(BaseModel):
    """Base of the per-action ActionConfig models: camelCase keys, unknown keys forbidden.

    Field types come from ``config_fields``; ``configs.py`` checks the fields one by one (a templated
    value only once rendered) and builds the model without validating it twice.
    """

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)

    # camelCase key -> its default from the UTC moment the run was queued (time-stamped file names).
    stamped: ClassVar[Mapping[str, Callable[[datetime], str]]] = {}

    @classmethod
    def rules(cls, config: Mapping[str, Any], *, has_credential: bool | None) -> list[tuple[str, str]]:
        """Rules across keys, as (camelCase key, message), over the checked keys given (templates kept)."""
        return []

    def to_dict(self) -> dict[str, Any]:
        """The config as the run log and older readers see it: camelCase keys, unset optional keys left out."""
        return self.model_dump(by_alias=True, exclude_none=True)


class SendQuota(Protocol):
    """Daily send limits per department and channel (emails, SMS), shared by every executor."""

    async def reserve(self, count: int) -> None:
        """Reserve ``count`` messages for today; raises a permanent ActionError naming the limit."""

    async def release(self, count: int) -> None:
        """Give back a reservation whose send did not happen."""


class ActionHost(Protocol):
    """What the performing process offers an action: outbound connections through its egress policy
    (HTTP requests, sockets, and an aiohttp connector for the SDKs that bring aiohttp), settings, and
    the department's daily send quota for the action's channel."""

    @property
    def settings(self) -> ActionSection: ...

    @property
    def quota(self) -> SendQuota: ...

    async def http_request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        what: str,
        timeout: float,
        follow_redirects: bool,
        headers: Mapping[str, str] | None = None,
        content: str | bytes | None = None,
        data: Mapping[str, str] | None = None,
        json: Any = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        private_headers: Iterable[str] = (),
    ) -> HttpReply:
        """One request; raises ``ActionError`` (permanent or transient) for refusals and transport failures."""
        ...

    async def connect_socket(self, host: str, port: int, *, timeout: float, what: str) -> socket.socket:
        """A connected TCP socket to a checked address of ``host`` (for an SDK's ``sock=``); raises
        ``ActionError``: permanent when the egress policy refuses it, transient when it cannot connect."""
        ...

    async def check_endpoint(self, host: str, port: int, *, what: str) -> None:
        """Resolve and check ``host`` before an SDK client is built for it, so a refused endpoint fails
        before any request; raises ``ActionError`` (permanent when refused, transient when the name does
        not resolve). ``what`` names the endpoint in the message ("S3 endpoint minio")."""
        ...

    def aiohttp_connector(self, **options: Any) -> aiohttp.TCPConnector:
        """An aiohttp connector (``options`` as for ``aiohttp.TCPConnector``) that connects only to
        addresses the egress policy checked, IP literals included, asking no DNS of its own."""
        ...

    def egress_refusal(self, exc: BaseException, what: str) -> ActionError | None:
        """The ``ActionError`` for an egress refusal among ``exc`` and its causes (an SDK wraps what
        the connector raised), or None when the failure is something else."""
        ...


class StepRun(Protocol):
    """The step being performed: ids, the rendered OutputTemplate and the department's plan."""

    @property
    def run_id(self) -> int: ...

    @property
    def step_id(self) -> int: ...

    @property
    def department_id(self) -> int: ...

    @property
    def content(self) -> str: ...

    @property
    def plan(self) -> Plan: ...

    @property
    def attempt(self) -> int: ...

    @property
    def idempotency_key(self) -> str: ...


C = TypeVar("C", bound=ActionConfig)
K = TypeVar("K", bound=CredentialData)

Perform = Callable[[ActionHost, StepRun, C, K | None], Awaitable[ActionResult]]


@dataclass(frozen=True, slots=True)
class ActionSpec(Generic[C, K]):
    """One action type: its config model, the credential types it accepts (None: "no credential"),
    the credential model ``perform`` receives (None: the one whose fields the stored credential has,
    for an action accepting several types) and ``perform`` itself."""

    action_type: ActionType
    config: type[C]
    credentials: frozenset[CredentialType | None]
    credential_model: type[K] | None
    perform: Perform[C, K]
