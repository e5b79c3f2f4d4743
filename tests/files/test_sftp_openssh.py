"""UploadFileSftp steps run by the executor against Debian's OpenSSH server (sshd, internal-sftp).

Workflows are created through the API and their runs performed by the session's executor; what is
asserted is what a user sees: the file on the server's disk, the run log's result, the run's error.
"""

from __future__ import annotations

import os
from typing import Any

import asyncssh
import httpx

from shared.enums import ActionType, CredentialType, RunStatus
from tests.executor.conftest import Pipeline
from tests.files.conftest import files_under
from tests.peers.openssh import OpenSshPeer

# What the executor reaches (settings allow 127.0.0.0/8; "localhost" may resolve to ::1 as well).
HOST = "127.0.0.1"
CONTENT = "Structure Fire at 1 Main St (priority 3)"


def sftp_step(credential_id: int, **config: Any) -> dict[str, Any]:
    return {
        "ActionType": int(ActionType.UploadFileSftp),
        "StepOrder": 1,
        "OutputTemplate": "{{ call.name }} at {{ call.address }} (priority {{ call.priority }})",
        "ActionConfig": {"remotePath": "/upload/calls", "filename": "call-{{ call.id }}.txt", **config},
        "WorkflowCredentialId": credential_id,
    }


async def upload(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, credential: dict[str, Any], **config: Any
) -> tuple[dict[str, Any], str | None]:
    """One run of a one-step workflow: the finished run and its step's ActionResult."""
    credential_id = await pipeline.credential(department_id, CredentialType.Sftp, credential)
    workflow_id, _ = await pipeline.workflow(api, sftp_step(credential_id, **config), max_retries=0)
    run_id = await pipeline.start_run(workflow_id, department_id)
    run = dict(await pipeline.wait_status(run_id))
    (log,) = await pipeline.logs(run_id)
    return run, log["action_result"]


async def test_password_login_with_a_pinned_fingerprint_stores_the_rendered_file(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, openssh: OpenSshPeer
) -> None:
    credential = openssh.credential(host=HOST, hostKey=openssh.fingerprint)

    run, result = await upload(api, pipeline, department_id, credential)

    assert run["status"] == RunStatus.Completed, run["error_message"]
    assert files_under(openssh.upload) == {"calls/call-1001.txt": CONTENT.encode()}
    assert (openssh.upload / "calls" / "call-1001.txt").stat().st_uid == openssh.user.uid
    assert (
        result
        == f"SFTP upload: sftp://{HOST}:{openssh.port}/upload/calls/call-1001.txt ({len(CONTENT)} bytes)"
    )


async def test_key_login_without_a_pin_shows_the_server_fingerprint(
    api: httpx.AsyncClient,
    pipeline: Pipeline,
    department_id: int,
    openssh: OpenSshPeer,
    ssh_client_key: asyncssh.SSHKey,
) -> None:
    key = ssh_client_key.export_private_key("openssh").decode()
    credential = openssh.credential(host=HOST, password=None, privateKey=key)

    run, result = await upload(api, pipeline, department_id, credential)

    assert run["status"] == RunStatus.Completed, run["error_message"]
    assert (openssh.upload / "calls" / "call-1001.txt").read_text() == CONTENT
    assert result is not None
    assert result.endswith(f"host key not pinned — server presented {openssh.fingerprint} (ssh-ed25519)")


async def test_wrong_password_fails_the_step_for_good(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, openssh: OpenSshPeer
) -> None:
    credential = openssh.credential(host=HOST, password=openssh.user.password + "x")

    run, _ = await upload(api, pipeline, department_id, credential)

    assert run["status"] == RunStatus.Failed
    assert run["attempt_number"] == 1
    assert run["next_attempt_on"] is None
    assert run["error_message"] == (
        f"Step 1 (UploadFileSftp) failed: SFTP authentication to {HOST} failed for user {openssh.user.name!r}"
    )
    assert files_under(openssh.upload) == {}


async def test_a_different_host_key_stops_before_the_password_is_sent(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, openssh: OpenSshPeer
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    credential = openssh.credential(host=HOST, hostKey=other.export_public_key("openssh").decode())
    password_logins = f"password for {openssh.user.name}"  # sshd logs "Accepted/Failed password for"
    before = openssh.log().count(password_logins)

    run, _ = await upload(api, pipeline, department_id, credential)

    assert run["status"] == RunStatus.Failed
    message = run["error_message"]
    assert message.startswith(f"Step 1 (UploadFileSftp) failed: SFTP host key mismatch for {HOST}: ")
    assert openssh.fingerprint in message
    assert other.get_fingerprint("sha256") in message
    assert files_under(openssh.upload) == {}
    assert openssh.log().count(password_logins) == before


async def test_overwrite_false_keeps_an_existing_file_and_true_replaces_it(
    api: httpx.AsyncClient, pipeline: Pipeline, department_id: int, openssh: OpenSshPeer
) -> None:
    existing = openssh.upload / "calls" / "call-1001.txt"
    existing.parent.mkdir()
    existing.write_text("written by the station's own system")
    for path in (existing.parent, existing):
        os.chown(path, openssh.user.uid, openssh.user.gid)
    credential = openssh.credential(host=HOST, hostKey=openssh.host_key_line)

    kept, _ = await upload(api, pipeline, department_id, credential, overwrite=False)
    replaced, _ = await upload(api, pipeline, department_id, credential, overwrite=True)

    assert kept["status"] == RunStatus.Failed
    assert kept["error_message"] == (
        f"Step 1 (UploadFileSftp) failed: SFTP upload refused: sftp://{HOST}:{openssh.port}"
        "/upload/calls/call-1001.txt already exists and overwrite is false"
    )
    assert replaced["status"] == RunStatus.Completed, replaced["error_message"]
    assert existing.read_text() == CONTENT
