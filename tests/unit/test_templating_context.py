from datetime import UTC, datetime
from typing import Any

import pytest

from shared.enums import EventType
from shared.templating import build_context, render

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)  # a Sunday


def _build(payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return build_context(EventType.CallAdded, payload, department_id=7, now=NOW, **kwargs)


class TestDepartment:
    def test_id_is_the_event_department_whatever_the_payload_says(self):
        context = _build({"department": {"id": 99, "name": "Springfield FD"}})
        assert context["department"]["id"] == 7
        assert render("{{ department.name }} #{{ department.id }}", context) == "Springfield FD #7"

    def test_missing_fields_are_empty_strings(self):
        department = _build({})["department"]
        assert department["name"] == department["code"] == department["time_zone"] == ""
        assert department["address"] == dict.fromkeys(
            ("street", "city", "state", "postal_code", "country", "full"), ""
        )

    def test_full_address_is_composed_when_missing(self):
        address = {"street": "100 Main Street", "city": "Springfield", "state": "IL", "postal_code": None}
        context = _build({"department": {"address": address}})
        assert context["department"]["address"]["full"] == "100 Main Street Springfield IL"
        assert context["department"]["address"]["postal_code"] == ""


class TestUser:
    def test_absent_user_has_every_common_field_empty(self):
        user = _build({"call": {"id": 1}})["user"]
        assert set(user) >= {
            "id",
            "first_name",
            "last_name",
            "full_name",
            "email",
            "mobile_number",
            "username",
        }
        assert set(user.values()) == {""}

    def test_full_name_is_composed_from_first_and_last(self):
        assert (
            _build({"user": {"first_name": "John", "last_name": "Smith"}})["user"]["full_name"]
            == "John Smith"
        )

    def test_given_fields_are_kept(self):
        user = _build({"user": {"full_name": "Jane Doe", "badge": "E-12"}})["user"]
        assert (user["full_name"], user["badge"], user["email"]) == ("Jane Doe", "E-12", "")


class TestTimestamp:
    @pytest.mark.parametrize(
        ("zone", "department_now", "date", "time", "day"),
        [
            ("Eastern Standard Time", "2026-11-29T07:00:00-05:00", "2026-11-29", "07:00:00", "Sunday"),
            ("AUS Eastern Standard Time", "2026-11-29T23:00:00+11:00", "2026-11-29", "23:00:00", "Sunday"),
            ("Europe/Berlin", "2026-11-29T13:00:00+01:00", "2026-11-29", "13:00:00", "Sunday"),
            ("Pacific/Kiritimati", "2026-11-30T02:00:00+14:00", "2026-11-30", "02:00:00", "Monday"),
            ("Mars/Olympus_Mons", "2026-11-29T12:00:00Z", "2026-11-29", "12:00:00", "Sunday"),
            ("../../etc/passwd", "2026-11-29T12:00:00Z", "2026-11-29", "12:00:00", "Sunday"),
            ("", "2026-11-29T12:00:00Z", "2026-11-29", "12:00:00", "Sunday"),
        ],
    )
    def test_department_local_time(self, zone, department_now, date, time, day):
        timestamp = _build({"department": {"time_zone": zone}})["timestamp"]
        assert timestamp == {
            "utc_now": "2026-11-29T12:00:00Z",
            "department_now": department_now,
            "date": date,
            "time": time,
            "day_of_week": day,
        }

    def test_naive_now_is_utc(self):
        context = build_context(EventType.NoteAdded, {}, department_id=1, now=datetime(2026, 1, 2, 3, 4, 5))
        assert context["timestamp"]["utc_now"] == "2026-01-02T03:04:05Z"


class TestEvent:
    def test_event_root(self):
        occurred = datetime(2026, 11, 29, 11, 59, 30, 123456, tzinfo=UTC)
        context = _build({}, occurred_on=occurred, event_id="0b7c2d")
        assert context["event"] == {
            "id": "0b7c2d",
            "type": "CallAdded",
            "type_value": 0,
            "occurred_on": "2026-11-29T11:59:30Z",
        }

    def test_occurred_on_defaults_to_now_and_id_is_optional(self):
        assert _build({})["event"] == {
            "type": "CallAdded",
            "type_value": 0,
            "occurred_on": "2026-11-29T12:00:00Z",
        }


def test_payload_roots_are_kept_but_cannot_spoof_common_roots():
    context = _build(
        {"call": {"id": 1001}, "timestamp": {"utc_now": "1999-01-01T00:00:00Z"}, "event": {"type": "X"}}
    )
    assert context["call"] == {"id": 1001}
    assert context["timestamp"]["utc_now"] == "2026-11-29T12:00:00Z"
    assert context["event"]["type"] == "CallAdded"
