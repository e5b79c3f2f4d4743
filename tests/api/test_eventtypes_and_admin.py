"""GET /eventtypes and the admin plan endpoints."""

from __future__ import annotations

import httpx

from shared.enums import EventType
from tests.api.conftest import ClientFactory, assert_error, create_workflow


async def test_event_types_with_common_and_own_variables(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v4/workflows/eventtypes")
    assert response.status_code == 200
    types = response.json()
    assert [t["Value"] for t in types] == list(range(28))
    assert [t["Name"] for t in types] == [e.name for e in EventType]
    for entry in types:
        assert entry["DisplayName"]
        assert entry["Description"]
        names = {v["Name"] for v in entry["Variables"]}
        common = {v["Name"] for v in entry["Variables"] if v["IsCommon"]}
        assert {"department.name", "user.full_name"} <= names, entry["Name"]
        assert any(n.startswith("timestamp.") for n in common)
        assert any(not v["IsCommon"] for v in entry["Variables"]), entry["Name"]
        assert all(set(v) == {"Name", "DataType", "Description", "IsCommon"} for v in entry["Variables"])
    call_added = types[0]
    assert "call.name" in {v["Name"] for v in call_added["Variables"]}


async def test_admin_sets_and_reads_plan(
    client_for: ClientFactory, department_id: int, api: httpx.AsyncClient
) -> None:
    async with client_for(1, "SystemAdmin") as admin:
        assert (await admin.get(f"/api/v4/admin/departments/{department_id}")).json() == {
            "DepartmentId": department_id,
            "Plan": "Free",
        }
        response = await admin.put(f"/api/v4/admin/departments/{department_id}", json={"Plan": "Paid"})
        assert response.json() == {"DepartmentId": department_id, "Plan": "Paid"}
        assert (await admin.get(f"/api/v4/admin/departments/{department_id}")).json()["Plan"] == "Paid"
        for n in range(4):  # the paid plan is in force at once
            await create_workflow(api, Name=f"w{n}")
        assert_error(
            await admin.put(f"/api/v4/admin/departments/{department_id}", json={"Plan": "Gold"}), 400
        )
        assert_error(await admin.put("/api/v4/admin/departments/0", json={"Plan": "Paid"}), 400)


async def test_admin_needs_system_admin(api: httpx.AsyncClient, department_id: int) -> None:
    assert_error(await api.get(f"/api/v4/admin/departments/{department_id}"), 403, "SystemAdmin")
    assert_error(await api.put(f"/api/v4/admin/departments/{department_id}", json={"Plan": "Paid"}), 403)
