"""`wf credentials rotate-key`: re-encrypt every credential with the current WF_MASTER_KEY.

Old keys stay readable through WF_MASTER_KEY_PREVIOUS while this runs. Rows already written with the
current key are skipped, so the command is idempotent and can be resumed after an interruption. Each
batch is its own transaction, and a row is only rewritten if nobody changed it meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.crypto import DecryptionError, Keyring, credential_aad
from shared.logging import get_logger
from shared.models import WorkflowCredential

log = get_logger(__name__)

BATCH_SIZE = 500


@dataclass
class RotationReport:
    reencrypted: int = 0
    current: int = 0
    # Rows no configured key can read (their master key is not in WF_MASTER_KEY_PREVIOUS).
    unreadable: int = 0


async def rotate_credentials(
    engine: AsyncEngine, keyring: Keyring, *, batch_size: int = BATCH_SIZE
) -> RotationReport:
    report = RotationReport()
    last_id = 0
    table = WorkflowCredential
    while True:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(table.workflow_credential_id, table.department_id, table.encrypted_data)
                    .where(table.workflow_credential_id > last_id)
                    .order_by(table.workflow_credential_id)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                return report
            for credential_id, department_id, token in rows:
                try:
                    if not keyring.needs_rotation(token):
                        report.current += 1
                        continue
                    fresh = keyring.reencrypt(department_id, token, aad=credential_aad(credential_id))
                except DecryptionError as exc:
                    report.unreadable += 1
                    log.warning("credential.rotation_failed", credential_id=credential_id, reason=str(exc))
                    continue
                result = await conn.execute(
                    update(table)
                    .where(table.workflow_credential_id == credential_id, table.encrypted_data == token)
                    .values(encrypted_data=fresh)
                )
                # rowcount 0: updated concurrently through the API, which wrote it with the current key.
                report.reencrypted += result.rowcount
                report.current += 1 - result.rowcount
            last_id = rows[-1][0]
