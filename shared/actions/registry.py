"""Every action type the service knows, by ``ActionType``: adding an action is one provider module
(config model, credentials, rules, ``perform``) and one line here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from shared.actions import azure_blob, box, dropbox, email, ftp, http_call, s3, sftp, sms, webhooks
from shared.actions.spec import ActionSpec
from shared.enums import ActionType, CredentialType

PROVIDERS = [email, sms, http_call, ftp, sftp, s3, webhooks, azure_blob, box, dropbox]

ACTION_SPECS: dict[ActionType, ActionSpec[Any, Any]] = {
    spec.action_type: spec for provider in PROVIDERS for spec in provider.SPECS
}


class _AcceptedCredentials(Mapping[ActionType, frozenset[CredentialType | None]]):
    """A live view of ``ACTION_SPECS``, so an action registered later (a test's) is seen too."""

    def __getitem__(self, action_type: ActionType) -> frozenset[CredentialType | None]:
        return ACTION_SPECS[action_type].credentials

    def __iter__(self) -> Iterator[ActionType]:
        return iter(ACTION_SPECS)

    def __len__(self) -> int:
        return len(ACTION_SPECS)


# Which credential types an action accepts; None in the set means "no credential".
ACTION_CREDENTIALS: Mapping[ActionType, frozenset[CredentialType | None]] = _AcceptedCredentials()
