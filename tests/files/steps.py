"""One-step upload workflows run by the session's executor against the real daemons (vsftpd, sshd)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shared.enums import ActionType, CredentialType
from tests.executor.conftest import Pipeline
from tests.peers.openssh import OpenSshPeer
from tests.peers.vsftpd import VsftpdPeer

# What the executor reaches (settings allow 127.0.0.0/8; "localhost" may resolve to ::1 as well).
HOST = "127.0.0.1"
# The rendered OutputTemplate of ``upload_step`` for the sample call, and the file it names.
CONTENT = "Structure Fire at 1 Main St (priority 3)"
FILE = "calls/call-1001.txt"


@dataclass(frozen=True)
class RealServer:
    """A running daemon and how a step reaches it."""

    peer: OpenSshPeer | VsftpdPeer

    @property
    def protocol(self) -> str:
        return "SFTP" if isinstance(self.peer, OpenSshPeer) else "FTP"

    @property
    def action(self) -> ActionType:
        return ActionType.UploadFileSftp if self.protocol == "SFTP" else ActionType.UploadFileFtp

    @property
    def upload(self) -> Path:
        return self.peer.upload

    def url(self, path: str = FILE) -> str:
        return f"{self.protocol.lower()}://{HOST}:{self.peer.port}/upload/{path}"

    def existing(self, text: str) -> Path:
        """``FILE`` already on the server, written by its user."""
        path = self.upload / FILE
        path.parent.mkdir(parents=True)
        path.write_text(text)
        for owned in (path.parent, path):
            os.chown(owned, self.peer.user.uid, self.peer.user.gid)
        return path

    async def run(
        self,
        api: httpx.AsyncClient,
        pipeline: Pipeline,
        department_id: int,
        credential: dict[str, Any],
        **config: Any,
    ) -> tuple[dict[str, Any], str | None]:
        """One run of a one-step upload workflow (no retries): the finished run and the step's ActionResult."""
        ctype = CredentialType.Sftp if self.protocol == "SFTP" else CredentialType.Ftp
        credential_id = await pipeline.credential(department_id, ctype, credential)
        step = {
            "ActionType": int(self.action),
            "StepOrder": 1,
            "OutputTemplate": "{{ call.name }} at {{ call.address }} (priority {{ call.priority }})",
            "ActionConfig": {"remotePath": "/upload/calls", "filename": "call-{{ call.id }}.txt", **config},
            "WorkflowCredentialId": credential_id,
        }
        workflow_id, _ = await pipeline.workflow(api, step, max_retries=0)
        run_id = await pipeline.start_run(workflow_id, department_id)
        run = dict(await pipeline.wait_status(run_id))
        (log,) = await pipeline.logs(run_id)
        return run, log["action_result"]
