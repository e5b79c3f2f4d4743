import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.enums import EventType
from shared.templating import (
    EVENT_TYPE_DESCRIPTORS,
    build_context,
    catalog_json,
    render,
    sample_payload,
    variables_for,
)
from shared.templating.catalog import DATA_TYPES

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
COMMON_ROOTS = ("department.", "timestamp.", "user.", "event.")

# Values that are empty in a realistic event of that type; they must still be defined in the context.
EXPECTED_EMPTY = {
    EventType.CallAdded: {"call.closed_on", "call.completed_notes", "call.deleted_reason"},
    EventType.CallUpdated: {"call.closed_on", "call.completed_notes", "call.deleted_reason"},
    EventType.CallClosed: {"call.deleted_reason"},
    EventType.LogAdded: {"log.course", "log.course_code", "log.instructors"},  # a fire log has no course
}


def _context(event_type: EventType) -> dict[str, Any]:
    return build_context(
        event_type, sample_payload(event_type, now=NOW), department_id=7, now=NOW, event_id="evt-42"
    )


def _lookup(context: dict[str, Any], dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        assert isinstance(value, dict), f"{dotted}: {part} is not reachable"
        assert part in value, f"{dotted}: {part} is missing"
        value = value[part]
    return value


def test_one_descriptor_per_event_type_in_order():
    assert [(d.value, d.name) for d in EVENT_TYPE_DESCRIPTORS] == [(t.value, t.name) for t in EventType]
    assert len(EVENT_TYPE_DESCRIPTORS) == 28
    assert all(d.display_name and d.description for d in EVENT_TYPE_DESCRIPTORS)


def test_json_shape_matches_the_contract():
    body = catalog_json()
    json.dumps(body)
    assert (body[0]["Value"], body[0]["Name"], body[0]["DisplayName"]) == (0, "CallAdded", "Call Added")
    assert set(body[0]) == {"Value", "Name", "DisplayName", "Description", "Variables"}
    assert body[0]["Variables"][0] == {
        "Name": "department.id",
        "DataType": "int",
        "Description": "Department ID",
        "IsCommon": True,
    }


@pytest.mark.parametrize("event_type", list(EventType))
class TestVariables:
    def test_common_variables_present_and_marked(self, event_type):
        variables = {v.name: v for v in variables_for(event_type)}
        for name in ("department.name", "department.id", "timestamp.utc_now", "user.full_name", "event.type"):
            assert variables[name].is_common
        assert all(v.is_common == v.name.startswith(COMMON_ROOTS) for v in variables.values())
        assert any(not v.is_common for v in variables.values())

    def test_no_duplicates_and_well_formed(self, event_type):
        variables = variables_for(event_type)
        names = [v.name for v in variables]
        assert len(names) == len(set(names))
        assert all(v.data_type in DATA_TYPES and v.description for v in variables)
        assert all(re.fullmatch(r"[a-z_]+(\.[a-z0-9_]+)+", name) for name in names)

    def test_every_variable_renders_from_the_sample(self, event_type):
        context = _context(event_type)
        expected_empty = EXPECTED_EMPTY.get(event_type, set())
        for variable in variables_for(event_type):
            value = _lookup(context, variable.name)
            if variable.data_type == "array":
                assert isinstance(value, list), variable.name
                assert value, variable.name
                continue
            rendered = render("{{ " + variable.name + " }}", context)
            if variable.name in expected_empty:
                assert rendered == "", variable.name
            else:
                assert rendered != "", variable.name

    def test_sample_is_a_realistic_json_payload(self, event_type):
        payload = sample_payload(event_type, now=NOW)
        assert json.loads(json.dumps(payload)) == payload
        assert payload["department"]["name"] == "Sample Fire Department"
        assert payload["user"]["full_name"] == "John Smith"
        strings = re.findall(r'"([^"]*)"', json.dumps(payload))
        assert not {"string", "test", "value"} & {s.lower() for s in strings}


def test_resgrid_names_for_calls_units_training_and_certifications():
    call = {v.name for v in variables_for(EventType.CallAdded)}
    assert {"call.id", "call.name", "call.nature", "call.priority_text", "call.dispatches"} <= call
    assert {v.name for v in variables_for(EventType.CallUpdated)} == call
    unit = {v.name for v in variables_for(EventType.UnitStatusChanged)}
    assert {"unit.id", "unit_status.state_text", "previous_unit_status.state_text"} <= unit
    training = {v.name for v in variables_for(EventType.TrainingAdded)}
    assert {"training.name", "training.minimum_score", "training.to_be_completed_by"} <= training
    certification = {v.name for v in variables_for(EventType.CertificationExpiring)}
    assert {"certification.days_until_expiry", "certification.expires_on"} <= certification


def test_sample_times_are_relative_to_now():
    call = sample_payload(EventType.CallClosed, now=NOW)["call"]
    assert call["logged_on"] == "2026-11-29T11:50:00Z"
    assert call["closed_on"] == "2026-11-29T12:00:00Z"
    later = sample_payload(EventType.CertificationExpiring, now=NOW + timedelta(days=1))["certification"]
    assert later["expires_on"] == "2026-12-30T00:00:00Z"


def test_samples_are_independent_copies():
    first = sample_payload(EventType.GroupAdded)
    first["group"]["address"]["city"] = "Shelbyville"
    first["department"]["address"]["city"] = "Shelbyville"
    second = sample_payload(EventType.GroupAdded)
    assert second["group"]["address"]["city"] == second["department"]["address"]["city"] == "Springfield"
