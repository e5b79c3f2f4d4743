"""Sample event payloads for test runs, with the values of Resgrid's WorkflowSampleDataGenerator.

Unlike Resgrid's generator these are event payloads (template roots plus `department` and `user`), so a
test run goes through build_context exactly like a real event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.enums import EventType

from .context import iso_utc

SAMPLE_USER_ID = "00000000-0000-0000-0000-000000000001"
SAMPLE_NEW_USER_ID = "00000000-0000-0000-0000-000000000002"

_Payload = dict[str, Any]

SAMPLE_ADDRESS = {
    "street": "100 Main Street",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
    "country": "US",
    "full": "100 Main Street Springfield IL 62701 US",
}

SAMPLE_DEPARTMENT = {
    "id": 1,
    "name": "Sample Fire Department",
    "code": "SFD1",
    "type": "Fire",
    "time_zone": "Eastern Standard Time",
    "use_24_hour_time": False,
    "created_on": "2020-01-01T00:00:00Z",
    "phone_number": "555-867-5309",
    "address": SAMPLE_ADDRESS,
}

SAMPLE_USER = {
    "id": SAMPLE_USER_ID,
    "first_name": "John",
    "last_name": "Smith",
    "full_name": "John Smith",
    "email": "john.smith@samplefire.org",
    "mobile_number": "555-123-4567",
    "home_number": "555-987-6543",
    "identification_number": "FF-0042",
    "username": "jsmith",
    "time_zone": "Eastern Standard Time",
}


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def at(self, **delta: float) -> str:
        return iso_utc(self.now + timedelta(**delta))

    def day(self, days: int = 0, hour: int = 0) -> str:
        return iso_utc(
            (self.now + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
        )


def _call(clock: _Clock, event_type: EventType) -> _Payload:
    closed = event_type == EventType.CallClosed
    dispatched_on = clock.at(minutes=-8)
    return {
        "call": {
            "id": 1001,
            "number": "2024-001001",
            "name": "Structure Fire",
            "nature": "Reported structure fire with smoke visible from the street.",
            "notes": "Caller reports occupants may still be inside.",
            "address": "456 Oak Avenue, Springfield, IL",
            "geo_location": "39.7817,-89.6501",
            "type": "Structure Fire",
            "incident_number": "INC-2024-001",
            "reference_number": "REF-9876",
            "map_page": "Grid 12-B",
            "priority": 3,
            "priority_text": "Emergency",
            "is_critical": True,
            "state": 1 if closed else 0,
            "state_text": "Closed" if closed else "Active",
            "source": 0,
            "external_id": "EXT-001001",
            "logged_on": clock.at(minutes=-10),
            "closed_on": clock.at() if closed else None,
            "completed_notes": "Fire extinguished, no injuries." if closed else "",
            "contact_name": "Jane Doe",
            "contact_number": "555-111-2222",
            "w3w": "filled.count.soap",
            "dispatch_count": 3,
            "dispatch_on": dispatched_on,
            "form_data": "{}",
            "is_deleted": False,
            "deleted_reason": "",
            "dispatches": [
                {
                    "user_id": SAMPLE_USER_ID,
                    "first_name": "John",
                    "last_name": "Smith",
                    "full_name": "John Smith",
                    "email": "john.smith@samplefire.org",
                    "mobile_number": "555-123-4567",
                    "identification_number": "FF-0042",
                    "group_id": 1,
                    "group_name": "Station 1",
                    "role_names": "Firefighter, Driver/Operator",
                    "roles": ["Firefighter", "Driver/Operator"],
                    "dispatch_count": 1,
                    "dispatched_on": dispatched_on,
                }
            ],
            "unit_dispatches": [
                {
                    "unit_id": 10,
                    "unit_name": "Engine 1",
                    "unit_type": "Engine",
                    "vin": "1FTNX21L8NEA00001",
                    "plate_number": "IL-FIRE1",
                    "station_group_id": 1,
                    "dispatch_count": 1,
                    "dispatched_on": dispatched_on,
                }
            ],
            "group_dispatches": [
                {
                    "group_id": 1,
                    "group_name": "Station 1",
                    "group_type": "Station",
                    "dispatch_email": "station1@samplefire.org",
                    "latitude": "39.7817",
                    "longitude": "-89.6501",
                    "dispatch_count": 1,
                    "dispatched_on": dispatched_on,
                }
            ],
            "role_dispatches": [
                {
                    "role_id": 5,
                    "role_name": "Driver/Operator",
                    "role_description": "Certified apparatus driver and pump operator.",
                    "dispatch_count": 1,
                    "dispatched_on": dispatched_on,
                }
            ],
            "notes_list": [
                {
                    "note": "Second alarm requested by Engine 1.",
                    "source": "User",
                    "timestamp": clock.at(minutes=-5),
                    "user_id": SAMPLE_USER_ID,
                }
            ],
            "contacts": [{"contact_id": 301, "contact_type": "Primary"}],
        }
    }


def _group(group_id: int, name: str, email: str) -> _Payload:
    return {"id": group_id, "name": name, "type": 1, "dispatch_email": email}


def _full_group() -> _Payload:
    return _group(1, "Station 1", "station1@samplefire.org") | {
        "message_email": "station1-msg@samplefire.org",
        "latitude": "39.7817",
        "longitude": "-89.6501",
        "what3words": "filled.count.soap",
        "address": dict(SAMPLE_ADDRESS),
    }


def _unit(number: int) -> _Payload:
    return {
        "id": 10,
        "name": f"Engine {number}",
        "type": "Engine",
        "vin": f"1FTNX21L8NEA0000{number}",
        "plate_number": f"IL-FIRE{number}",
        "station_group_id": 1,
    }


def _calendar(clock: _Clock) -> _Payload:
    return {
        "calendar": {
            "id": 1201,
            "title": "Monthly Drill Night",
            "description": "Monthly training drill - all hands required.",
            "location": "Station 1",
            "start": clock.day(7, hour=19),
            "end": clock.day(7, hour=21),
            "is_all_day": False,
            "item_type": 0,
            "signup_type": 1,
            "is_public": False,
        }
    }


def _shift(clock: _Clock) -> _Payload:
    return {
        "shift": {
            "id": 1301,
            "name": "A Shift",
            "code": "A",
            "schedule_type": 0,
            "assignment_type": 0,
            "color": "#0000FF",
            "start_day": clock.day(),
            "start_time": "07:00 AM",
            "end_time": "07:00 AM",
            "hours": 24,
            "department_number": "SFD1",
        }
    }


def _training(clock: _Clock) -> _Payload:
    return {
        "training": {
            "id": 101,
            "name": "Hazmat Operations Level 1",
            "description": "Annual hazardous materials operations training for all first responders.",
            "training_text": "Complete all modules and pass the quiz with a minimum score of 80%.",
            "minimum_score": 80.0,
            "created_on": clock.day(),
            "to_be_completed_by": clock.day(30),
        }
    }


def _shift_trade(filled: bool) -> _Payload:
    trade: _Payload = {"id": 1501, "department_number": "SFD1"}
    if filled:
        trade["filled_by_user_id"] = SAMPLE_NEW_USER_ID
    return {"shift_trade": trade}


_BUILDERS: dict[EventType, Callable[[_Clock], _Payload]] = {
    EventType.CallAdded: lambda clock: _call(clock, EventType.CallAdded),
    EventType.CallUpdated: lambda clock: _call(clock, EventType.CallUpdated),
    EventType.CallClosed: lambda clock: _call(clock, EventType.CallClosed),
    EventType.UnitStatusChanged: lambda clock: {
        "unit_status": {
            "id": 501,
            "state": 2,
            "state_text": "Committed",
            "timestamp": clock.at(),
            "note": "En route to scene",
            "latitude": 39.7817,
            "longitude": -89.6501,
            "destination_id": 1001,
        },
        "unit": _unit(1),
        "previous_unit_status": {"state": 0, "state_text": "Available", "timestamp": clock.at(minutes=-5)},
    },
    EventType.PersonnelStaffingChanged: lambda clock: {
        "staffing": {
            "id": 301,
            "state": 1,
            "state_text": "Delayed",
            "timestamp": clock.at(),
            "note": "Running 15 minutes late",
        },
        "previous_staffing": {"state": 0, "state_text": "Available", "timestamp": clock.at(hours=-1)},
    },
    EventType.PersonnelStatusChanged: lambda clock: {
        "status": {
            "id": 401,
            "action_type": 1,
            "action_text": "Responding",
            "timestamp": clock.at(),
            "geo_location": "39.7817,-89.6501",
            "destination_id": 1001,
            "note": "Responding from Station 1",
        },
        "previous_status": {
            "action_type": 0,
            "action_text": "Standing By",
            "timestamp": clock.at(minutes=-2),
        },
    },
    EventType.UserCreated: lambda clock: {
        "new_user": {
            "id": SAMPLE_NEW_USER_ID,
            "username": "ajenkins",
            "email": "a.jenkins@samplefire.org",
            "name": "Alex Jenkins",
        }
    },
    EventType.UserAssignedToGroup: lambda clock: {
        "assigned_user": {"id": SAMPLE_USER_ID, "name": "John Smith"},
        "group": _group(2, "Station 2", "station2@samplefire.org"),
        "previous_group": {"id": 1, "name": "Station 1"},
    },
    EventType.DocumentAdded: lambda clock: {
        "document": {
            "id": 901,
            "name": "2024 Standard Operating Guidelines",
            "category": "SOG",
            "description": "Updated standard operating guidelines for 2024.",
            "type": "application/pdf",
            "filename": "SOG-2024.pdf",
            "admins_only": False,
            "added_on": clock.day(),
        }
    },
    EventType.NoteAdded: lambda clock: {
        "note": {
            "id": 1101,
            "title": "Hydrant Out of Service",
            "body": "Hydrant at 123 Main St is out of service for repairs until further notice.",
            "color": "#FF0000",
            "category": "Operations",
            "is_admin_only": False,
            "added_on": clock.at(),
            "expires_on": clock.day(14),
        }
    },
    EventType.UnitAdded: lambda clock: {
        "unit": _unit(3) | {"four_wheel": False, "special_permit": False},
    },
    EventType.LogAdded: lambda clock: {
        "log": {
            "id": 801,
            "narrative": "Responded to structure fire at 456 Oak Ave. Fire was contained to kitchen. "
            "No injuries reported.",
            "type": "Fire",
            "log_type": 1,
            "external_id": "EXT-001001",
            "initial_report": "Smoke detector activation",
            # A fire log has no training course: these stay empty, as Resgrid's sample leaves them.
            "course": "",
            "course_code": "",
            "instructors": "",
            "cause": "Cooking fire",
            "contact_name": "Jane Doe",
            "contact_number": "555-111-2222",
            "location": "456 Oak Avenue",
            "started_on": clock.at(hours=-2),
            "ended_on": clock.at(hours=-1),
            "logged_on": clock.at(),
            "other_agencies": "Police",
            "other_units": "Ladder 2, Rescue 1",
            "other_personnel": "Capt. Maria Rivera",
            "call_id": 1001,
        }
    },
    EventType.CalendarEventAdded: _calendar,
    EventType.CalendarEventUpdated: _calendar,
    EventType.ShiftCreated: _shift,
    EventType.ShiftUpdated: _shift,
    EventType.ResourceOrderAdded: lambda clock: {
        "order": {
            "id": 1401,
            "title": "Type 3 Engine Request",
            "incident_number": "INC-2024-WILDFIRE",
            "incident_name": "Oak Creek Wildfire",
            "incident_address": "Forest Road 42, Springfield County",
            "summary": "Requesting mutual aid Type 3 engine for wildfire suppression.",
            "open_date": clock.day(),
            "needed_by": clock.day(1),
            "contact_name": "IC Jones",
            "contact_number": "555-999-8888",
            "special_instructions": "Crew must have red card certification.",
            "meetup_location": "Fire Camp, Hwy 66 Mile Marker 22",
            "financial_code": "FIN-2024-WF",
        }
    },
    EventType.ShiftTradeRequested: lambda clock: _shift_trade(filled=False),
    EventType.ShiftTradeFilled: lambda clock: _shift_trade(filled=True),
    EventType.MessageSent: lambda clock: {
        "message": {
            "id": 201,
            "subject": "Station Meeting Tonight",
            "body": "All personnel please report to the station for the monthly meeting at 1900 hours.",
            "is_broadcast": True,
            "sent_on": clock.at(),
            "type": 0,
            "recipients": "all",
            "expire_on": clock.at(days=1),
        }
    },
    EventType.TrainingAdded: _training,
    EventType.TrainingUpdated: _training,
    EventType.InventoryAdjusted: lambda clock: {
        "inventory": {
            "id": 601,
            "type_name": "SCBA Cylinder",
            "type_description": "Self-contained breathing apparatus cylinder",
            "unit_of_measure": "unit",
            "batch": "2024-BATCH-01",
            "note": "Monthly inventory check",
            "location": "Apparatus Bay A, Shelf 3",
            "amount": 12.0,
            "previous_amount": 14.0,
            "timestamp": clock.at(),
            "group_id": 1,
        }
    },
    EventType.CertificationExpiring: lambda clock: {
        "certification": {
            "id": 701,
            "name": "EMT-Basic",
            "number": "EMT-2024-0042",
            "type": "EMS",
            "area": "Emergency Medical",
            "issued_by": "State EMS Authority",
            "expires_on": clock.day(30),
            "received_on": clock.day(-730),
            "days_until_expiry": 30,
        }
    },
    EventType.FormSubmitted: lambda clock: {
        "form": {
            "id": "form-001",
            "name": "Daily Apparatus Check",
            "type": 0,
            "submitted_data": '{"apparatus":"Engine 1","mileage":"45231","condition":"Good"}',
            "submitted_by_user_id": SAMPLE_USER_ID,
            "submitted_on": clock.at(),
        }
    },
    EventType.PersonnelRoleChanged: lambda clock: {
        "role_change": {
            "user_id": SAMPLE_USER_ID,
            "role_id": 5,
            "role_name": "Driver/Operator",
            "role_description": "Certified apparatus driver and pump operator.",
            "action": "Added",
        }
    },
    EventType.GroupAdded: lambda clock: {"group": _full_group()},
    EventType.GroupUpdated: lambda clock: {"group": _full_group()},
}


def sample_payload(event_type: EventType, *, now: datetime | None = None) -> dict[str, Any]:
    """A realistic payload for `event_type`, with times relative to `now` (default: the current time)."""
    clock = _Clock(datetime.now(UTC) if now is None else now)
    payload = _BUILDERS[event_type](clock)
    payload["department"] = dict(SAMPLE_DEPARTMENT, address=dict(SAMPLE_ADDRESS))
    payload["user"] = dict(SAMPLE_USER)
    return payload
