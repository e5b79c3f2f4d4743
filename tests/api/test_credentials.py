"""Credentials: secrets encrypted at rest, masked in every response, kept on update; caps; key rotation."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.credentials.rotation import rotate_credentials
from shared.config import Settings
from shared.crypto import Keyring, credential_aad
from shared.enums import CredentialType
from tests.api.conftest import MASK, ORIGINS, SMTP_DATA, assert_error, create_credential, set_plan
from tests.support.helpers import insert_step, store_credential, workflow_with_http_step
from tests.support.infra import TEST_MASTER_KEY

SECRET: str = SMTP_DATA["password"]


async def _raw_row(db: AsyncEngine, credential_id: int) -> tuple[Any, ...]:
    async with db.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT public_data::text, secret_keys::text, encrypted_data, department_id "
                    "FROM workflow_credentials WHERE workflow_credential_id = :c"
                ),
                {"c": credential_id},
            )
        ).one()
    return tuple(row)


class TestCreateAndRead:
    async def test_secret_is_masked_and_encrypted_at_rest(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        created = await create_credential(api)
        assert created["Data"] == {
            "host": "smtp.example.org",
            "port": 587,
            "username": "dispatch",
            "password": MASK,
            "security": "starttls",
            "fromAddress": "dispatch@example.org",
        }
        cid = created["WorkflowCredentialId"]
        for response in (
            await api.get(f"/api/v4/workflows/credentials/{cid}"),
            await api.get("/api/v4/workflows/credentials"),
        ):
            assert response.status_code == 200
            assert SECRET not in response.text
            assert MASK in response.text
        public, keys, encrypted, dept = await _raw_row(db, cid)
        assert SECRET not in str(public)
        assert SECRET not in str(encrypted)
        assert json.loads(str(keys)) == ["password"]
        assert str(encrypted).startswith("wf1.")
        keyring = Keyring.from_base64(TEST_MASTER_KEY)
        assert keyring.decrypt_json(department_id, str(encrypted), aad=credential_aad(cid)) == {
            "password": SECRET
        }
        assert dept == department_id

    @pytest.mark.parametrize(
        ("ctype", "data", "words"),
        [
            (0, {"host": "smtp.example.org"}, ["Data.fromAddress", "required"]),
            (0, {**SMTP_DATA, "port": 70000}, ["Data.port"]),
            (0, {**SMTP_DATA, "bogus": 1}, ["Data.bogus", "unknown"]),
            (5, {}, ["Data.token", "required"]),
            (8, {"webhookUrl": "https://evil.example.com/hook"}, ["Data.webhookUrl", "webhook.office.com"]),
            (
                9,
                {"webhookUrl": "https://hooks.slack.com.evil.example/x"},
                ["Data.webhookUrl", "hooks.slack.com"],
            ),
            (14, {"token": "x"}, ["CredentialType"]),
        ],
    )
    async def test_data_is_validated_against_its_type(
        self, api: httpx.AsyncClient, ctype: int, data: dict[str, object], words: list[str]
    ) -> None:
        response = await api.post(
            "/api/v4/workflows/credentials", json={"Name": "c", "CredentialType": ctype, "Data": data}
        )
        body = assert_error(response, 400, *words)
        assert "evil.example.com/hook" not in json.dumps(body)  # webhook URLs are secrets: never echoed whole

    @pytest.mark.parametrize(
        "body",
        [
            {"CredentialType": 5, "Data": {"token": "t", "allowedOrigins": ORIGINS}},
            {"Name": "", "CredentialType": 5, "Data": {"token": "t", "allowedOrigins": ORIGINS}},
            {"Name": "c", "CredentialType": 5, "Data": "token"},
            {"Name": "c", "CredentialType": 5},
        ],
    )
    async def test_missing_or_malformed_fields_are_400(
        self, api: httpx.AsyncClient, body: dict[str, object]
    ) -> None:
        assert_error(await api.post("/api/v4/workflows/credentials", json=body), 400)

    async def test_validation_errors_never_echo_secret_values(self, api: httpx.AsyncClient) -> None:
        response = await api.post(
            "/api/v4/workflows/credentials",
            json={"Name": "c", "CredentialType": 6, "Data": {"username": "a:b", "password": "pa\nss-SECRET"}},
        )
        body = assert_error(response, 400, "Data.username", "Data.password")
        assert "SECRET" not in json.dumps(body)


class TestUpdate:
    async def test_update_keeps_omitted_and_masked_secrets(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        created = await create_credential(api)
        cid = created["WorkflowCredentialId"]
        keyring = Keyring.from_base64(TEST_MASTER_KEY)
        # Send back what GET returned, with one field changed: the mask keeps the password.
        data = {**created["Data"], "fromName": "Station 9"}
        response = await api.put(
            f"/api/v4/workflows/credentials/{cid}",
            json={"Name": "Renamed", "CredentialType": 0, "Data": data},
        )
        assert response.status_code == 200, response.text
        assert response.json()["Data"]["fromName"] == "Station 9"
        assert response.json()["Data"]["password"] == MASK
        assert response.json()["UpdatedOn"] is not None
        _, _, encrypted, _ = await _raw_row(db, cid)
        assert keyring.decrypt_json(department_id, str(encrypted), aad=credential_aad(cid)) == {
            "password": SECRET
        }
        # Omitted entirely: kept too.
        omitted = {k: v for k, v in data.items() if k != "password"}
        response = await api.put(
            f"/api/v4/workflows/credentials/{cid}",
            json={"Name": "Renamed", "CredentialType": 0, "Data": omitted},
        )
        assert response.status_code == 200, response.text
        _, _, encrypted, _ = await _raw_row(db, cid)
        assert keyring.decrypt_json(department_id, str(encrypted), aad=credential_aad(cid)) == {
            "password": SECRET
        }
        # A new value replaces it.
        response = await api.put(
            f"/api/v4/workflows/credentials/{cid}",
            json={"Name": "Renamed", "CredentialType": 0, "Data": {**data, "password": "new-pw"}},
        )
        assert response.status_code == 200
        _, _, encrypted, _ = await _raw_row(db, cid)
        assert keyring.decrypt_json(department_id, str(encrypted), aad=credential_aad(cid)) == {
            "password": "new-pw"
        }

    async def test_type_cannot_change(self, api: httpx.AsyncClient) -> None:
        created = await create_credential(api)
        response = await api.put(
            f"/api/v4/workflows/credentials/{created['WorkflowCredentialId']}",
            json={"Name": "x", "CredentialType": 5, "Data": {"token": "t", "allowedOrigins": ORIGINS}},
        )
        assert_error(response, 400, "CredentialType")

    async def test_update_is_validated(self, api: httpx.AsyncClient) -> None:
        created = await create_credential(api)
        response = await api.put(
            f"/api/v4/workflows/credentials/{created['WorkflowCredentialId']}",
            json={"Name": "x", "CredentialType": 0, "Data": {**SMTP_DATA, "port": 0}},
        )
        assert_error(response, 400, "Data.port")


class TestCapsAndDelete:
    async def test_free_plan_allows_two(self, api: httpx.AsyncClient) -> None:
        await create_credential(api, name="a")
        await create_credential(api, name="b")
        response = await api.post(
            "/api/v4/workflows/credentials", json={"Name": "c", "CredentialType": 0, "Data": SMTP_DATA}
        )
        assert_error(response, 400, "Free", "2")

    async def test_paid_plan_allows_twenty(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        await set_plan(db, department_id, "Paid")
        for n in range(20):
            await create_credential(api, 5, {"token": f"t{n}", "allowedOrigins": ORIGINS}, name=f"c{n}")
        response = await api.post(
            "/api/v4/workflows/credentials",
            json={"Name": "x", "CredentialType": 5, "Data": {"token": "t", "allowedOrigins": ORIGINS}},
        )
        assert_error(response, 400, "Paid", "20")

    async def test_simultaneous_creates_never_pass_the_last_slot(self, api: httpx.AsyncClient) -> None:
        import asyncio

        await create_credential(api, name="a")
        responses = await asyncio.gather(
            *(
                api.post(
                    "/api/v4/workflows/credentials",
                    json={
                        "Name": f"r{n}",
                        "CredentialType": 5,
                        "Data": {"token": "t", "allowedOrigins": ORIGINS},
                    },
                )
                for n in range(5)
            )
        )
        assert sorted(r.status_code for r in responses) == [200, 400, 400, 400, 400]

    async def test_delete_is_allowed_while_a_step_uses_it(self, api: httpx.AsyncClient) -> None:
        created = await create_credential(api, 5, {"token": "t", "allowedOrigins": ORIGINS})
        cid = created["WorkflowCredentialId"]
        workflow_id, _ = await workflow_with_http_step(
            api, "https://cad.example.org/x", template="x", name="w", action_type=2, credential_id=cid
        )
        assert (await api.delete(f"/api/v4/workflows/credentials/{cid}")).status_code == 200
        assert_error(await api.get(f"/api/v4/workflows/credentials/{cid}"), 404)
        assert_error(await api.delete(f"/api/v4/workflows/credentials/{cid}"), 404)
        fetched = (await api.get(f"/api/v4/workflows/{workflow_id}")).json()
        assert fetched["Steps"][0]["WorkflowCredentialId"] == cid


async def test_rotation_reencrypts_under_the_new_master_key(
    api: httpx.AsyncClient, db: AsyncEngine, department_id: int
) -> None:
    created = await create_credential(api)
    cid = created["WorkflowCredentialId"]
    new_key = base64.b64encode(bytes(range(100, 132))).decode()
    rotating = Keyring.from_base64(new_key, [TEST_MASTER_KEY])
    first = await rotate_credentials(db, rotating, batch_size=7)
    assert first.reencrypted >= 1
    assert first.unreadable == 0
    _, _, encrypted, _ = await _raw_row(db, cid)
    assert not rotating.needs_rotation(str(encrypted))
    only_new = Keyring.from_base64(new_key)
    assert only_new.decrypt_json(department_id, str(encrypted), aad=credential_aad(cid)) == {
        "password": SECRET
    }
    again = await rotate_credentials(db, rotating)
    assert again.reencrypted == 0  # idempotent
    # Put everything back under the suite's key so the running API (and other tests) can read it.
    back = await rotate_credentials(db, Keyring.from_base64(TEST_MASTER_KEY, [new_key]))
    assert back.unreadable == 0
    response = await api.put(
        f"/api/v4/workflows/credentials/{cid}",
        json={"Name": "n", "CredentialType": 0, "Data": created["Data"]},
    )
    assert response.status_code == 200
    _, _, encrypted, _ = await _raw_row(db, cid)
    assert Keyring.from_base64(TEST_MASTER_KEY).decrypt_json(
        department_id, str(encrypted), aad=credential_aad(cid)
    ) == {"password": SECRET}


def test_rotate_key_command(settings: object, tmp_path: object) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "WF_DATABASE_URL": settings.database_url,  # type: ignore[attr-defined]
        "WF_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,  # type: ignore[attr-defined]
        "WF_MASTER_KEY": TEST_MASTER_KEY,
        "WF_RUN_DIR": str(tmp_path),
        "WF_ENV": "testing",
    }
    env.pop("WF_MASTER_KEY_PREVIOUS", None)
    done = subprocess.run(
        [sys.executable, "-m", "wf.cli", "credentials", "rotate-key"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("re-encrypted 0 credentials;")


class TestDestinationBinding:
    """Re-pointing a credential needs its secrets again; HTTP credentials go to their origins only."""

    async def test_re_pointing_with_the_masked_secret_is_400_naming_it(self, api: httpx.AsyncClient) -> None:
        created = await create_credential(api)
        cid = created["WorkflowCredentialId"]
        for change in ({"host": "smtp.attacker.example"}, {"port": 2525}, {"security": "none"}):
            response = await api.put(
                f"/api/v4/workflows/credentials/{cid}",
                json={"Name": "Mail relay", "CredentialType": 0, "Data": {**created["Data"], **change}},
            )
            assert_error(response, 400, "Data.password", "sent again", next(iter(change)))
        # With the secret sent again, the move is accepted.
        response = await api.put(
            f"/api/v4/workflows/credentials/{cid}",
            json={
                "Name": "Mail relay",
                "CredentialType": 0,
                "Data": {**created["Data"], "host": "smtp2.example.org", "password": "new-secret"},
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["Data"]["host"] == "smtp2.example.org"

    async def test_an_http_credential_with_origins_refuses_steps_elsewhere(
        self, api: httpx.AsyncClient
    ) -> None:
        bearer = await create_credential(api, 5, {"token": "t", "allowedOrigins": ORIGINS})
        assert bearer["Data"]["allowedOrigins"] == ORIGINS
        path = await _steps_path(api)
        step = _bearer_step(bearer["WorkflowCredentialId"])
        for elsewhere in ("https://attacker.example/collect", "https://cad.example.org:8443/x"):
            assert_error(
                await api.post(path, json=step(elsewhere)), 400, "ActionConfig.url", "cad.example.org"
            )
        assert (await api.post(path, json=step("https://CAD.example.org/hook"))).status_code == 200
        # A templated URL can only be checked when it is sent (the executor refuses other origins).
        assert (await api.post(path, json=step("https://{{ call.host }}/hook"))).status_code == 200

    async def test_a_credential_without_origins_is_pinned_by_its_first_step(
        self, api: httpx.AsyncClient
    ) -> None:
        # Clients may send only the token (docs/api-behaviour.md, Validation): that must keep working.
        bearer = await create_credential(api, 5, {"token": "t"})
        cid = bearer["WorkflowCredentialId"]
        assert "allowedOrigins" not in bearer["Data"]
        path = await _steps_path(api)
        step = _bearer_step(cid)
        # A template cannot pin it: the 400 says to set the origins on the credential.
        assert_error(
            await api.post(path, json=step("https://{{ call.host }}/hook")),
            400,
            "WorkflowCredentialId",
            "allowedOrigins",
        )
        assert "allowedOrigins" not in await _credential_data(api, cid)
        first = await api.post(path, json=step("https://CAD.example.org/hook"))
        assert first.status_code == 200, first.text
        assert (await _credential_data(api, cid))["allowedOrigins"] == ORIGINS
        # From now on it is bound: another origin is refused, on add and on update.
        assert_error(
            await api.post(path, json=step("https://attacker.example/x")), 400, "ActionConfig.url", ORIGINS[0]
        )
        moved = await api.put(
            f"{path}/{first.json()['WorkflowStepId']}", json=step("https://attacker.example/x")
        )
        assert_error(moved, 400, "ActionConfig.url", ORIGINS[0])
        assert (await api.post(path, json=step("https://cad.example.org/other"))).status_code == 200
        # A client that does not know the field (renames it, secret masked) keeps the pinned origins.
        renamed = await api.put(
            f"/api/v4/workflows/credentials/{cid}",
            json={"Name": "r", "CredentialType": 5, "Data": {"token": MASK}},
        )
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["Data"]["allowedOrigins"] == ORIGINS

    async def test_concurrent_first_steps_pin_a_credential_to_one_origin(
        self, api: httpx.AsyncClient, db: AsyncEngine, department_id: int
    ) -> None:
        await set_plan(db, department_id, "Paid")  # six workflows
        cid = (await create_credential(api, 5, {"token": "t"}))["WorkflowCredentialId"]
        step = _bearer_step(cid)
        # Steps in different workflows (no shared workflow lock), each given the credential at once.
        paths = []
        for _ in range(6):
            path = await _steps_path(api)
            created = await api.post(path, json={**step("https://x.example/"), "WorkflowCredentialId": None})
            paths.append(f"{path}/{created.json()['WorkflowStepId']}")
        responses = await asyncio.gather(
            *(api.put(path, json=step(f"https://h{n}.example/hook")) for n, path in enumerate(paths))
        )
        accepted = [n for n, response in enumerate(responses) if response.status_code == 200]
        assert len(accepted) == 1, [r.text for r in responses]
        assert (await _credential_data(api, cid))["allowedOrigins"] == [f"https://h{accepted[0]}.example"]

    async def test_a_legacy_credential_used_by_steps_is_pinned_to_their_origins(
        self, api: httpx.AsyncClient, db: AsyncEngine, settings: Settings, department_id: int
    ) -> None:
        cid, path, old_step = await _legacy_bearer_with_a_step(
            api, db, settings, department_id, "https://cad.example.org/hook"
        )
        step = _bearer_step(cid)
        # A new step (or the old one, re-pointed) cannot take the secret elsewhere, nor pin it there.
        assert_error(
            await api.post(path, json=step("https://attacker.example/x")), 400, "ActionConfig.url", ORIGINS[0]
        )
        assert_error(
            await api.put(f"{path}/{old_step}", json=step("https://attacker.example/x")),
            400,
            "ActionConfig.url",
            ORIGINS[0],
        )
        assert "allowedOrigins" not in await _credential_data(api, cid)
        assert (await api.post(path, json=step("https://cad.example.org/new"))).status_code == 200
        assert (await _credential_data(api, cid))["allowedOrigins"] == ORIGINS

    async def test_a_legacy_credential_whose_steps_are_templated_needs_origins_set(
        self, api: httpx.AsyncClient, db: AsyncEngine, settings: Settings, department_id: int
    ) -> None:
        cid, path, _ = await _legacy_bearer_with_a_step(
            api, db, settings, department_id, "https://{{ call.host }}/hook"
        )
        response = await api.post(path, json=_bearer_step(cid)("https://cad.example.org/hook"))
        assert_error(response, 400, "WorkflowCredentialId", "allowedOrigins")
        # Setting them needs the secret again: a stolen admin token cannot bind it to its own server.
        bind = {"Name": "b", "CredentialType": 5, "Data": {"token": MASK, "allowedOrigins": ORIGINS}}
        assert_error(await api.put(f"/api/v4/workflows/credentials/{cid}", json=bind), 400, "Data.token")
        bind["Data"]["token"] = "legacy-secret"
        assert (await api.put(f"/api/v4/workflows/credentials/{cid}", json=bind)).status_code == 200
        assert (
            await api.post(path, json=_bearer_step(cid)("https://cad.example.org/hook"))
        ).status_code == 200


async def _steps_path(api: httpx.AsyncClient) -> str:
    workflow = (await api.post("/api/v4/workflows", json={"Name": "w", "TriggerEventType": 0})).json()
    return f"/api/v4/workflows/{workflow['WorkflowId']}/steps"


async def _legacy_bearer_with_a_step(
    api: httpx.AsyncClient, db: AsyncEngine, settings: Settings, department_id: int, url: str
) -> tuple[int, str, int]:
    """A bearer credential and an HTTP step using it, both stored before credentials had origins:
    the credential's id, the steps' path and the step's id."""
    async with db.begin() as conn:
        cid = await store_credential(
            conn, settings, department_id, CredentialType.HttpBearer, {"token": "legacy-secret"}
        )
    path = await _steps_path(api)
    async with db.begin() as conn:
        step_id = await insert_step(
            conn,
            int(path.split("/")[-2]),
            action_type=3,
            step_order=1,
            template="x",
            config={"url": url},
            credential_id=cid,
        )
    return cid, path, step_id


async def _credential_data(api: httpx.AsyncClient, credential_id: int) -> dict[str, Any]:
    response = await api.get(f"/api/v4/workflows/credentials/{credential_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["Data"]
    return data


def _bearer_step(credential_id: int) -> Callable[[str], dict[str, Any]]:
    def step(url: str) -> dict[str, Any]:
        return {
            "ActionType": 3,
            "StepOrder": 1,
            "OutputTemplate": "x",
            "WorkflowCredentialId": credential_id,
            "ActionConfig": json.dumps({"url": url}),
        }

    return step
