"""Fixtures for the file-upload action tests: an egress guard that allows loopback, a builder for
action contexts, and the real OpenSSH and vsftpd daemons (one of each per session) with the
pipeline that runs workflow steps against them."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
import pytest

from services.executor.actions.base import ActionContext, ActionDeps
from services.executor.egress import EgressGuard
from shared.config import ActionSection
from shared.enums import ActionType, Plan
from tests.executor.conftest import pipeline  # noqa: F401  (the end-to-end tests of the real daemons)
from tests.peers.daemon import LocalUser, clear, create_user, missing, remove_user
from tests.peers.listener import INTERNAL, Listener
from tests.peers.openssh import SSHD, OpenSshPeer
from tests.peers.tls import LocalCA
from tests.peers.vsftpd import VSFTPD, VsftpdPeer

D = TypeVar("D", OpenSshPeer, VsftpdPeer)

LOOPBACK = ["127.0.0.0/8"]
# "localhost" may also resolve to ::1, which the loopback allowance does not cover.
LOCALHOST = {"localhost": "127.0.0.1"}


@pytest.fixture
def egress() -> EgressGuard:
    return EgressGuard(allow_cidrs=LOOPBACK, host_overrides=LOCALHOST)


@pytest.fixture
def deps(egress: EgressGuard) -> ActionDeps:
    return ActionDeps(egress=egress, settings=ActionSection(upload_timeout_s=15.0, http_timeout_s=10.0))


@pytest.fixture
def strict_deps() -> ActionDeps:
    """The production default: no allowed CIDRs, so loopback is refused."""
    return ActionDeps(
        egress=EgressGuard(host_overrides=LOCALHOST), settings=ActionSection(upload_timeout_s=15.0)
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


# --- real daemons: OpenSSH's sshd and vsftpd, one of each per session -----------------------------


@pytest.fixture(scope="session")
def files_user() -> Iterator[LocalUser]:
    """This session's login on the real daemons; their chroots live in its home under /run (every
    folder above a chroot must be root's and closed to others, which /tmp is not)."""
    reason = missing(SSHD, VSFTPD)
    if reason is not None:
        pytest.skip(reason)
    home = Path("/run/wf-files-test") / str(os.getpid())
    shutil.rmtree(home, ignore_errors=True)
    user = create_user(home)
    try:
        yield user
    finally:
        remove_user(user)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def ssh_client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def _serving(peer: D) -> Iterator[D]:
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="session")
def openssh_server(
    files_user: LocalUser, ssh_client_key: asyncssh.SSHKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenSshPeer]:
    home = tmp_path_factory.mktemp("sshd")
    yield from _serving(OpenSshPeer(home, files_user.home / "sftp", files_user, ssh_client_key))


@pytest.fixture(scope="session")
def vsftpd_server(files_user: LocalUser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VsftpdPeer]:
    yield from _serving(VsftpdPeer(tmp_path_factory.mktemp("vsftpd"), files_user.home / "ftp", files_user))


@pytest.fixture(scope="session")
def vsftpd_tls_server(
    files_user: LocalUser, local_ca: LocalCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VsftpdPeer]:
    home = tmp_path_factory.mktemp("vsftpd-tls")
    yield from _serving(VsftpdPeer(home, files_user.home / "ftps", files_user, tls=local_ca))


@pytest.fixture
def openssh(openssh_server: OpenSshPeer) -> OpenSshPeer:
    clear(openssh_server.upload)
    return openssh_server


@pytest.fixture
def vsftpd(vsftpd_server: VsftpdPeer) -> VsftpdPeer:
    clear(vsftpd_server.upload)
    return vsftpd_server


@pytest.fixture
def vsftpd_tls(vsftpd_tls_server: VsftpdPeer) -> VsftpdPeer:
    clear(vsftpd_tls_server.upload)
    return vsftpd_tls_server
